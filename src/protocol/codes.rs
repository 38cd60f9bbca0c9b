//! Return codes of commands (Appendix 1). Values >= 0 mean success.

pub const OK: i64 = 0;
pub const SEND_FAILED: i64 = -1;
pub const REPEATED_COMMAND: i64 = -7;
pub const BAD_PARAMETER: i64 = -11;
pub const EXECUTION_ERROR: i64 = -12;
pub const UNKNOWN_COMMAND: i64 = -13;
pub const WRITE_FILE_FAILED: i64 = -15;
pub const READ_FILE_FAILED: i64 = -16;
pub const FILE_NOT_FOUND: i64 = -17;
pub const NO_SPACE: i64 = -18;
pub const CHECKSUM_ERROR: i64 = -19;
pub const LENGTH_MISMATCH: i64 = -20;
pub const PLATFORM_MISMATCH: i64 = -22;
pub const OLDER_VERSION: i64 = -23;
pub const BAD_UPGRADE_FLAG: i64 = -24;
pub const BAD_UPGRADE_NAME: i64 = -25;
pub const OPEN_DURING_OPEN_PERIOD: i64 = -28;
pub const DATA_TOO_BIG: i64 = -106;
pub const INVALID_OPTIONS: i64 = -108;
pub const OUT_OF_MEMORY: i64 = -604;
pub const SAVE_PARAMETER_FAILED: i64 = -612;
pub const CANCEL_ALARM_FAILED: i64 = -614;
pub const RESTART_FAILED: i64 = -615;
pub const NORMAL_OPEN_FAILED: i64 = -616;
/// Also a URL off the server's origin (session::origin): the URL is refused
/// before any connection, as a malformed one is; -8 "Unauthorized
/// connection" reads like the communication password failing.
pub const BAD_URL: i64 = -618;
pub const EMPTY_PARAMETER: i64 = -619;
pub const BAD_DATA_FORMAT: i64 = -620;
pub const UNKNOWN_FIELD: i64 = -621;
pub const UNKNOWN_TABLE: i64 = -629;
pub const SHELL_FAILED: i64 = -630;
pub const BAD_BASE64_LENGTH: i64 = -631;
pub const BAD_FILE_NAME: i64 = -632;
pub const UNSUPPORTED_COMMAND: i64 = -708;
pub const UPLOAD_OPTIONS_FAILED: i64 = -709;
pub const UPGRADE_FAILED: i64 = -720;
pub const DOWNLOAD_FAILED: i64 = -721;
pub const UPLOAD_DATA_FAILED: i64 = -722;
pub const WAIT_TIMEOUT: i64 = -725;
pub const SERVER_HTTP_ERROR: i64 = -726;
pub const UPLOAD_COUNT_FAILED: i64 = -728;
pub const NO_SERVER_RESPONSE: i64 = -730;
pub const SERVER_RECEIVE_ERROR: i64 = -731;
