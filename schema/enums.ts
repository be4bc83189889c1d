import { registerEnumType } from 'type-graphql';
import {
  ExclusionReason,
  FederationInboxState,
  IngestRejectionCode,
  Level,
  MetricsGroupBy,
  Modality,
  ReaderRole,
  ReaderSlot,
  ReferenceSource,
  Role,
  Sex,
  Side,
  Split,
  SuppressionReason,
} from '../server/domain';

registerEnumType(Modality, { name: 'Modality', description: 'Imaging modality: radiograph, computed tomography, magnetic resonance' });
registerEnumType(Level, { name: 'Level', description: 'Lumbar facet-joint level' });
registerEnumType(Side, { name: 'Side' });
registerEnumType(Split, { name: 'Split', description: 'Patient-level data split' });
registerEnumType(ReaderRole, { name: 'ReaderRole', description: 'A reader’s role in the reading workflow' });
registerEnumType(ReaderSlot, { name: 'ReaderSlot', description: 'Reader 1 (FIRST) or reader 2 (SECOND) of a site' });
registerEnumType(Role, { name: 'Role', description: 'The role an API token carries' });
registerEnumType(Sex, { name: 'Sex' });
registerEnumType(ExclusionReason, { name: 'ExclusionReason', description: 'Study exclusion criteria' });
registerEnumType(ReferenceSource, {
  name: 'ReferenceSource',
  description: 'How the reference grade came about: reader agreement, adjudication, or a file from a consensus panel or external read',
});
registerEnumType(IngestRejectionCode, { name: 'IngestRejectionCode', description: 'Why an uploaded object or manifest row was not stored' });
registerEnumType(MetricsGroupBy, { name: 'MetricsGroupBy', description: 'A dimension to group metrics by; the pooled row always comes too' });
registerEnumType(SuppressionReason, {
  name: 'SuppressionReason',
  description: 'Why a statistics row was withheld from a role without patient-level access (docs/statistics.md, disclosure control)',
  valuesConfig: {
    FEWER_THAN_MIN_PATIENTS: { description: 'The row holds fewer patients than the minimum group size' },
    COMPLEMENT_TOO_SMALL: { description: 'A wider scope would differ from this row by fewer patients than the minimum' },
    READER_SHARE_WITHHELD: {
      description:
        "A slot's or a role's row where one of its readers holds fewer patients than the minimum (it and a row without that reader would differ by them), or whose one reader's own row would be withheld",
    },
  },
});
registerEnumType(FederationInboxState, {
  name: 'FederationInboxState',
  description: 'Where a federated task stands at this node: received, computing, held for a coordinator, released, refused, failed, submitted',
});
