export { Queue } from './queue.ts'
export { Producer } from './producer.ts'
export type { BulkJob } from './producer.ts'
export { Consumer } from './consumer.ts'
export { Reaper } from './reaper.ts'
export type { ReaperEvents } from './reaper.ts'
export { MemoryStorage } from './storage/memory.ts'
export type { MemoryStorageOptions } from './storage/memory.ts'
export { FileStorage } from './storage/file.ts'
export type { FileStorageOptions } from './storage/file.ts'
export { JsonSerde, MsgpackSerde } from './serde.ts'
export type { Serde } from './serde.ts'
export { DEFAULTS } from './options.ts'
export {
  QueueError, TimeoutError, JobFailedError, JobCancelledError, MaxRetriesError, JobNotFoundError, StorageError,
  InvalidArgumentError, QueueClosedError
} from './errors.ts'
export type {
  Job, JobHandler, AsyncJobHandler, CallbackJobHandler, QueueConfig, ConsumerConfig, CommonConfig, ReaperConfig,
  EnqueueOptions, EnqueueAndWaitOptions, EnqueueResult, CancelResult, MessageStatus, UpdateResultTTLResult,
  SerializedError, QueueEvents, AfterExecutionContext, BackoffOption, LeaderElectionOptions, Logger
} from './types.ts'
export type {
  Storage, JobState, TerminalState, ActiveState, NewJob, EnqueueOutcome, ClaimedJob, Settlement, ClaimOptions,
  BlockingClaimOptions, CancelOutcome, AbortOutcome, UpdateTTLOutcome, JobRecord, Notice, LeaseReport, RecoveryOutcome, StateCounts
} from './storage/types.ts'
