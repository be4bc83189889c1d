import { Check, Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { BaseRecord } from './base-record';
import { Instance } from './instance.entity';
import { Joint } from './joint.entity';

/** Where a joint is seen: a frame of an instance and the region of interest around the joint, in pixels. */
@Entity()
@Unique(['jointId', 'instanceId', 'frame'])
@Check(`"roi_width" > 0 AND "roi_height" > 0 AND "roi_x" >= 0 AND "roi_y" >= 0 AND "frame" >= 0`)
export class JointImage extends BaseRecord {
  @Column({ type: 'uuid' })
  jointId: string;

  @ManyToOne(() => Joint, { onDelete: 'CASCADE' })
  @JoinColumn()
  joint?: Joint;

  @Index()
  @Column({ type: 'uuid' })
  instanceId: string;

  @ManyToOne(() => Instance, { onDelete: 'CASCADE' })
  @JoinColumn()
  instance?: Instance;

  @Column({ type: 'integer', default: 0 })
  frame: number;

  @Column({ type: 'integer' })
  roiX: number;

  @Column({ type: 'integer' })
  roiY: number;

  @Column({ type: 'integer' })
  roiWidth: number;

  @Column({ type: 'integer' })
  roiHeight: number;
}
