// kovn's OVSDB client (RFC 7047): connect, monitor into a cache, build and run transactions.
export { OvsdbClient } from './client.ts';
export type { ConnectOptions, ConnectionEvent, LockEvent, MonitorHandle, MonitorSync } from './client.ts';
export { Cache, TableCache } from './cache.ts';
export type { RowEvent, RowOp } from './cache.ts';
export { OpsBuilder, opsFor } from './ops.ts';
export type {
  AssertOp, CommentOp, Condition, ConditionFunction, DeleteOp, InsertOp, MutateOp, Mutation, Mutator, Operation,
  OperationResult, SelectOp, UpdateOp, WaitOp, WaitOptions,
} from './ops.ts';
export type { MonitorMethod, MonitorSpec, TableMonitor } from './monitor.ts';
export {
  OvsdbClosedError, OvsdbDisconnectedError, OvsdbEncodeError, OvsdbError, OvsdbOperationError, OvsdbProtocolError,
  OvsdbRpcError, OvsdbSchemaError, OvsdbTimeoutError, isRetryableOvsdbError, operationError,
} from './errors.ts';
export type { FailedOperation } from './errors.ts';
export { isUuid, parseSchema } from './schema.ts';
export type { AtomicType, BaseType, ColumnKind, ColumnSchema, DatabaseSchema, TableSchema } from './schema.ts';
export { modelProblems, modelSchema } from './model.ts';
export type { DatabaseModel, RowOf, TableMap } from './model.ts';
export { decodeRow, encodeOperation, encodeOperationJson, encodeRow } from './encode.ts';
export { JsonFramingError, JsonStreamParser } from './json-stream.ts';
export { RpcConnection } from './rpc.ts';
export { parseEndpoint } from './transport.ts';
export type { Endpoint, TlsOptions } from './transport.ts';
export * as nb from './models/ovn-nb.ts';
export * as sb from './models/ovn-sb.ts';
export * as vswitch from './models/vswitch.ts';
