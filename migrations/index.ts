import { Init1795768356245 } from './1795768356245-Init';
import { AddIngest1795769783599 } from './1795769783599-AddIngest';
import { AddPredictions1795770976082 } from './1795770976082-AddPredictions';
import { AddInferenceJobs1795774455756 } from './1795774455756-AddInferenceJobs';
import { AddJobLeases1795860000000 } from './1795860000000-AddJobLeases';
import { WidenInstanceGeometry1796200000000 } from './1796200000000-WidenInstanceGeometry';
import { TokenExpiryAndClientRequestId1796300000000 } from './1796300000000-TokenExpiryAndClientRequestId';
import { AddReferenceRevision1796400000000 } from './1796400000000-AddReferenceRevision';
import { AddCellExposure1796410000000 } from './1796410000000-AddCellExposure';
import { AddAuditSequence1796420000000 } from './1796420000000-AddAuditSequence';
import { AddReaderSlotsAndReferenceImports1796600000000 } from './1796600000000-AddReaderSlotsAndReferenceImports';
import { AddFederationHub1797100000000 } from './1797100000000-AddFederationHub';
import { AddFederationInbox1797200000000 } from './1797200000000-AddFederationInbox';
import { AddFederatedRounds1798000000000 } from './1798000000000-AddFederatedRounds';
import { AddReleasedPopulations1797300000000 } from './1797300000000-AddReleasedPopulations';
import { AddSecureRounds1798100000000 } from './1798100000000-AddSecureRounds';
import { AddFederatedInference1798200000000 } from './1798200000000-AddFederatedInference';

/** Every migration, in order. Listed by hand so the same list works from TypeScript (tests) and dist (CLI). */
export const MIGRATIONS: Function[] = [
  Init1795768356245,
  AddIngest1795769783599,
  AddPredictions1795770976082,
  AddInferenceJobs1795774455756,
  AddJobLeases1795860000000,
  WidenInstanceGeometry1796200000000,
  TokenExpiryAndClientRequestId1796300000000,
  AddReferenceRevision1796400000000,
  AddCellExposure1796410000000,
  AddAuditSequence1796420000000,
  AddReaderSlotsAndReferenceImports1796600000000,
  AddFederationHub1797100000000,
  AddFederationInbox1797200000000,
  AddReleasedPopulations1797300000000,
  AddFederatedRounds1798000000000,
  AddSecureRounds1798100000000,
  AddFederatedInference1798200000000,
];
