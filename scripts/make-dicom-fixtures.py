#!/usr/bin/python3
"""Writes the DICOM test fixtures of test/fixtures/dicom/ (committed; CI needs neither Python nor these tools).

Needs Debian's python3-pydicom, python3-numpy, dcmtk and libgdcm-tools:
    apt-get install -y python3-pydicom python3-numpy dcmtk libgdcm-tools
    /usr/bin/python3 scripts/make-dicom-fixtures.py   # Debian's python, where the apt packages live

Every file is synthetic. `identified-*` files carry an identifying value in every PS3.15 Basic Profile
category (names, IDs, dates, institution, device, descriptions, a private tag, a nested sequence) so the tests
can prove none survives de-identification. The values are listed in IDENTIFIERS.json beside the files.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'dicom')
CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2'
MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4'
DX_IMAGE = '1.2.840.10008.5.1.4.1.1.1.1'
RT_PLAN = '1.2.840.10008.5.1.4.1.1.481.5'
BASIC_SR = '1.2.840.10008.5.1.4.1.1.88.11'
ECG_WAVEFORM = '1.2.840.10008.5.1.4.1.1.9.1.1'

# Identifying values, one per category; the tests search the stored bytes and every database column for them.
IDENTIFIERS = {
    'PatientName': 'Hoffmann^Gertrude^Maria',
    'PatientID': 'MRN-7734021',
    'OtherPatientIDs': 'ALT-99812',
    'PatientBirthDate': '19480312',
    'PatientAddress': '12 Lindenstrasse Entenhausen',
    'InstitutionName': 'St Hildegard Klinikum',
    'InstitutionAddress': 'Klinikweg 4 Entenhausen',
    'ReferringPhysicianName': 'Brenner^Klaus',
    'PerformingPhysicianName': 'Okafor^Adaeze',
    'OperatorsName': 'Lindqvist^Sven',
    'StationName': 'CTSCAN-EAST-07',
    'DeviceSerialNumber': 'SN-55AX-90121',
    'AccessionNumber': 'ACC-20240117-88',
    'StudyID': 'STUDY-4471',
    'StudyDescription': 'LWS Hoffmann Nachkontrolle',
    'SeriesDescription': 'Axial facet Hoffmann',
    'ImageComments': 'Patient Hoffmann complained of pain',
    'PrivateValue': 'PRIVATE-HOFFMANN-NOTE',
    'NestedAccession': 'ACC-NESTED-5521',
    'StudyInstanceUID': '1.2.826.0.1.3680043.9.7134.1.20240117.1',
    'SeriesInstanceUID': '1.2.826.0.1.3680043.9.7134.1.20240117.1.2',
    'SOPInstanceUID': '1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3',
    'FrameOfReferenceUID': '1.2.826.0.1.3680043.9.7134.1.20240117.9',
}


def base(sop_class=CT_IMAGE, rows=64, columns=64, bits=16, modality='CT', suffix='1', pixels=True):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = IDENTIFIERS['SOPInstanceUID'] + '.' + suffix
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = '1.2.826.0.1.3680043.9.7134.99'
    ds = FileDataset(None, {}, file_meta=meta, preamble=b'\0' * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = IDENTIFIERS['StudyInstanceUID']
    ds.SeriesInstanceUID = IDENTIFIERS['SeriesInstanceUID'] + '.' + str(sum(map(ord, modality)))
    ds.FrameOfReferenceUID = IDENTIFIERS['FrameOfReferenceUID']
    ds.Modality = modality
    ds.PatientName = IDENTIFIERS['PatientName']
    ds.PatientID = IDENTIFIERS['PatientID']
    ds.OtherPatientIDs = IDENTIFIERS['OtherPatientIDs']
    ds.PatientBirthDate = IDENTIFIERS['PatientBirthDate']
    ds.PatientAddress = IDENTIFIERS['PatientAddress']
    ds.PatientSex = 'F'
    ds.PatientAge = '076Y'
    ds.StudyDate = '20240117'
    ds.SeriesDate = '20240117'
    ds.AcquisitionDate = '20240117'
    ds.ContentDate = '20240117'
    ds.StudyTime = '101502'
    ds.ContentTime = '101530'
    ds.AccessionNumber = IDENTIFIERS['AccessionNumber']
    ds.StudyID = IDENTIFIERS['StudyID']
    ds.InstitutionName = IDENTIFIERS['InstitutionName']
    ds.InstitutionAddress = IDENTIFIERS['InstitutionAddress']
    ds.ReferringPhysicianName = IDENTIFIERS['ReferringPhysicianName']
    ds.PerformingPhysicianName = IDENTIFIERS['PerformingPhysicianName']
    ds.OperatorsName = IDENTIFIERS['OperatorsName']
    ds.StationName = IDENTIFIERS['StationName']
    ds.DeviceSerialNumber = IDENTIFIERS['DeviceSerialNumber']
    ds.Manufacturer = 'Synthetic Imaging'
    ds.StudyDescription = IDENTIFIERS['StudyDescription']
    ds.SeriesDescription = IDENTIFIERS['SeriesDescription']
    ds.ImageComments = IDENTIFIERS['ImageComments']
    ds.SeriesNumber = 3
    ds.InstanceNumber = int(suffix) if suffix.isdigit() else 1
    block = ds.private_block(0x0029, 'HOFFMANN PRIVATE', create=True)
    block.add_new(0x10, 'LO', IDENTIFIERS['PrivateValue'])
    referenced = Dataset()
    referenced.AccessionNumber = IDENTIFIERS['NestedAccession']
    referenced.ReferencedSOPClassUID = CT_IMAGE
    referenced.ReferencedSOPInstanceUID = IDENTIFIERS['SOPInstanceUID'] + '.77'
    referenced.PatientName = IDENTIFIERS['PatientName']
    ds.RequestAttributesSequence = Sequence([referenced])
    if pixels:
        ds.Rows = rows
        ds.Columns = columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.BitsAllocated = bits
        ds.BitsStored = 12 if bits == 16 else 8
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 0
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024 if modality == 'CT' else 0
        y, x = np.mgrid[0:rows, 0:columns]
        image = ((x * 7 + y * 13) % (4096 if bits == 16 else 256)).astype(np.uint16 if bits == 16 else np.uint8)
        ds.PixelData = image.tobytes()
    return ds


def save(ds, name, transfer_syntax=ExplicitVRLittleEndian):
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.is_little_endian = transfer_syntax != ExplicitVRBigEndian
    ds.is_implicit_VR = transfer_syntax == ImplicitVRLittleEndian
    path = os.path.join(OUT, name)
    ds.save_as(path, write_like_original=False)
    return path


def convert(tool, args, source, name):
    path = os.path.join(OUT, name)
    subprocess.run([tool, *args, source, path], check=True)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith('.dcm') or f.endswith('.bin'):
            os.remove(os.path.join(OUT, f))
    save(base(suffix='1'), 'identified-explicit-le.dcm')
    save(base(suffix='2'), 'identified-implicit-le.dcm', ImplicitVRLittleEndian)
    big = base(suffix='3')
    big.PixelData = np.frombuffer(big.PixelData, dtype='<u2').astype('>u2').tobytes()
    save(big, 'identified-explicit-be.dcm', ExplicitVRBigEndian)
    save(base(sop_class=MR_IMAGE, modality='MR', suffix='4'), 'identified-mr.dcm')
    save(base(sop_class=DX_IMAGE, modality='DX', bits=8, suffix='5'), 'identified-dx-8bit.dcm')
    # Compressed variants, each from a source of its own so every file has its own SOP Instance UID.
    work = tempfile.mkdtemp()
    def source(suffix, **kwargs):
        ds = base(suffix=suffix, **kwargs)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        path = os.path.join(work, f'{suffix}.dcm')
        ds.save_as(path, write_like_original=False)
        return path
    convert('dcmcrle', [], source('11'), 'identified-rle.dcm')
    convert('dcmcjpeg', ['--encode-lossless-sv1'], source('12'), 'identified-jpeg-lossless.dcm')
    convert('dcmcjpeg', ['--encode-baseline'], source('13', sop_class=DX_IMAGE, modality='DX', bits=8), 'identified-jpeg-baseline.dcm')
    convert('dcmcjpls', ['--encode-lossless'], source('14'), 'identified-jpeg-ls.dcm')
    subprocess.run(['gdcmconv', '--j2k', source('15'), os.path.join(OUT, 'identified-jpeg2000.dcm')], check=True)
    shutil.rmtree(work)

    # Rejections, each a real malformed file.
    with open(os.path.join(OUT, 'not-part10.bin'), 'wb') as f:
        f.write(b'This is a report, not a DICOM file.\n' * 20)
    raw = base(suffix='6')
    raw_path = save(raw, 'tmp-raw.dcm')
    with open(raw_path, 'rb') as f:
        data = f.read()
    os.remove(raw_path)
    with open(os.path.join(OUT, 'no-preamble.bin'), 'wb') as f:  # a bare data set (no preamble, no DICM)
        f.write(data[132:])
    with open(os.path.join(OUT, 'truncated.dcm'), 'wb') as f:
        f.write(data[: len(data) - 1000])
    # Impossible length: the PatientName element claims 0x7FFFFFF0 bytes (more than any file holds).
    name_tag = bytes([0x10, 0x00, 0x10, 0x00]) + b'PN'
    at = data.index(name_tag)
    broken = bytearray(data)
    broken[at + 6: at + 8] = b'\xff\xff'  # PN has a 2-byte length in explicit VR: 0xFFFF (odd, past the end)
    with open(os.path.join(OUT, 'impossible-length.dcm'), 'wb') as f:
        f.write(bytes(broken))
    mismatch = base(suffix='7')
    mismatch.Rows = 80  # the pixel data holds 64 x 64
    save(mismatch, 'pixel-length-mismatch.dcm')
    save(base(sop_class=RT_PLAN, modality='RTPLAN', suffix='8', pixels=False), 'rt-plan.dcm')
    save(base(sop_class=BASIC_SR, modality='SR', suffix='9', pixels=False), 'structured-report.dcm')
    save(base(sop_class=ECG_WAVEFORM, modality='ECG', suffix='10', pixels=False), 'waveform.dcm')

    with open(os.path.join(OUT, 'IDENTIFIERS.json'), 'w') as f:
        json.dump(IDENTIFIERS, f, indent=2)
        f.write('\n')
    for name in sorted(os.listdir(OUT)):
        print(f'{os.path.getsize(os.path.join(OUT, name)):>8}  {name}')


if __name__ == '__main__':
    sys.exit(main())
