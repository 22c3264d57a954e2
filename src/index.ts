export { Queue } from './queue.ts'
export { Producer } from './producer.ts'
export type { BulkJob } from './producer.ts'
export { Consumer } from './consumer.ts'
export { Reaper } from './reaper.ts'
export { Admin } from './admin.ts'
export type {
  AdminOptions, QueueStats, JobListItem, JobInfo, AttemptInfo, Selector, BulkOptions, BulkProgress, BulkResult, PurgeOptions
} from './admin.ts'
export type { Explanation, ExplainReason } from './admin-explain.ts'
export type { ReaperEvents } from './reaper.ts'
export { MemoryStorage } from './storage/memory.ts'
export type { MemoryStorageOptions } from './storage/memory.ts'
export { RedisStorage } from './storage/redis.ts'
export type { RedisStorageOptions, RedisStorageEvents } from './storage/redis.ts'
export { FileStorage } from './storage/file.ts'
export type { FileStorageOptions } from './storage/file.ts'
export { JsonSerde, MsgpackSerde, createJsonSerde } from './serde.ts'
export { generateId, contentId } from './ids.ts'
export type { Serde } from './serde.ts'
export { DEFAULTS } from './options.ts'
export {
  QueueError, TimeoutError, JobFailedError, JobCancelledError, MaxRetriesError, JobNotFoundError, StorageError,
  InvalidArgumentError, ResultTTLError, QueueClosedError, SerdeError
} from './errors.ts'
/** The name @platformatic/job-queue gives its base error class: the same class. */
export { QueueError as JobQueueError } from './errors.ts'
export type {
  Job, JobHandler, AsyncJobHandler, CallbackJobHandler, QueueConfig, ConsumerConfig, CommonConfig, ReaperConfig,
  EnqueueOptions, EnqueueAndWaitOptions, EnqueueResult, CancelResult, MessageStatus, UpdateResultTTLResult,
  SerializedError, QueueEvents, AfterExecutionContext, AfterExecutionHook, BackoffOption, LeaderElectionOptions, Logger
} from './types.ts'
export type {
  Storage, JobState, JobState as MessageState, TerminalState, ActiveState, NewJob, EnqueueOutcome, ClaimedJob, Settlement, ClaimOptions,
  BlockingClaimOptions, CancelOutcome, AbortOutcome, UpdateTTLOutcome, JobRecord, Notice, LeaseReport, RecoveryOutcome, StateCounts,
  AdminStorage, Stamp, ErrorGroup, SettleResult, WorkerInfo, WorkerEntry, Retention, RetentionRule, QueueTotals, QueueOverview,
  QueueSummary, JobSummary, JobDetail, AttemptRecord, JobQuery, JobPage, AdminAction, JobTarget, ActionResult, ApplyOptions,
  ApplyOutcome, FailureGroup
} from './storage/types.ts'
