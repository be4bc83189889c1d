// dcmjs logs "Invalid vr type ox" for every OB/OW pixel element it reads; the tests use dcmjs only as a reference reader.
import { log } from 'dcmjs';

log.setLevel('silent');
