//! NTSTATUS codes used by the client and the embedded server (MS-ERREF 2.3).

/// The operation succeeded.
pub const SUCCESS: u32 = 0x0000_0000;
/// Interim response: the final one follows with the same MessageId.
pub const PENDING: u32 = 0x0000_0103;
/// Warning: the data returned is valid but truncated.
pub const BUFFER_OVERFLOW: u32 = 0x8000_0005;
/// QUERY_DIRECTORY: the enumeration is complete.
pub const NO_MORE_FILES: u32 = 0x8000_0006;
/// Generic failure.
pub const UNSUCCESSFUL: u32 = 0xC000_0001;
/// The info class is not known.
pub const INVALID_INFO_CLASS: u32 = 0xC000_0003;
/// The output buffer cannot hold the fixed part of the answer.
pub const INFO_LENGTH_MISMATCH: u32 = 0xC000_0004;
/// A parameter is invalid (also: a request that does not parse).
pub const INVALID_PARAMETER: u32 = 0xC000_000D;
/// QUERY_DIRECTORY: nothing matches the pattern.
pub const NO_SUCH_FILE: u32 = 0xC000_000F;
/// READ at or past the end of the file.
pub const END_OF_FILE: u32 = 0xC000_0011;
/// SESSION_SETUP: send the next authentication leg.
pub const MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
/// Access refused (also: a path leaving the share).
pub const ACCESS_DENIED: u32 = 0xC000_0022;
/// The file name is not valid.
pub const OBJECT_NAME_INVALID: u32 = 0xC000_0033;
/// CREATE: an open of the file does not share the access asked for.
pub const SHARING_VIOLATION: u32 = 0xC000_0043;
/// The file does not exist.
pub const OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
/// The file exists and the disposition wanted a new one.
pub const OBJECT_NAME_COLLISION: u32 = 0xC000_0035;
/// A parent directory does not exist.
pub const OBJECT_PATH_NOT_FOUND: u32 = 0xC000_003A;
/// The path is syntactically refused (absolute, `..` ...).
pub const OBJECT_PATH_SYNTAX_BAD: u32 = 0xC000_003B;
/// Out of a server resource (here: too many sessions on a connection).
pub const INSUFFICIENT_RESOURCES: u32 = 0xC000_009A;
/// The disk is full.
pub const DISK_FULL: u32 = 0xC000_007F;
/// Authentication failed.
pub const LOGON_FAILURE: u32 = 0xC000_006D;
/// The command is not implemented.
pub const NOT_SUPPORTED: u32 = 0xC000_00BB;
/// The target is a directory but a file was required.
pub const FILE_IS_A_DIRECTORY: u32 = 0xC000_00BA;
/// The TreeId does not name a connected share.
pub const NETWORK_NAME_DELETED: u32 = 0xC000_00C9;
/// TREE_CONNECT: no such share.
pub const BAD_NETWORK_NAME: u32 = 0xC000_00CC;
/// The target is a file but a directory was required.
pub const NOT_A_DIRECTORY: u32 = 0xC000_0103;
/// CREATE: the session holds as many handles as the server allows.
pub const TOO_MANY_OPENED_FILES: u32 = 0xC000_011F;
/// The FileId does not name an open handle.
pub const FILE_CLOSED: u32 = 0xC000_0128;
/// The SessionId does not name a session.
pub const USER_SESSION_DELETED: u32 = 0xC000_0203;
/// STATUS_DIRECTORY_NOT_EMPTY
pub const DIRECTORY_NOT_EMPTY: u32 = 0xC000_0101;
/// STATUS_CANNOT_DELETE
pub const CANNOT_DELETE: u32 = 0xC000_0121;
/// READ/WRITE: the range is locked by another open (or, for a write, a
/// shared lock of any open).
pub const FILE_LOCK_CONFLICT: u32 = 0xC000_0054;
/// LOCK: a conflicting lock is held.
pub const LOCK_NOT_GRANTED: u32 = 0xC000_0055;
/// LOCK unlock: no such lock of this open.
pub const RANGE_NOT_LOCKED: u32 = 0xC000_007E;
/// LOCK: the range runs past 2^64.
pub const INVALID_LOCK_RANGE: u32 = 0xC000_01A1;
/// A pending request was cancelled (SMB2 CANCEL).
pub const CANCELLED: u32 = 0xC000_0120;
/// The request does not apply to this kind of handle.
pub const INVALID_DEVICE_REQUEST: u32 = 0xC000_0010;
/// CHANGE_NOTIFY: the handle was closed (or its tree/session went).
pub const NOTIFY_CLEANUP: u32 = 0x0000_010B;
/// CHANGE_NOTIFY: too many changes to list; enumerate the directory.
pub const NOTIFY_ENUM_DIR: u32 = 0x0000_010C;
