//! Installs every command executor into the dispatcher. Each family lives in
//! its own module; this is the one place that lists them.

use super::data::DataExecutor;
use super::Dispatcher;
use std::path::PathBuf;

/// What executors need to know about their surroundings at construction.
#[derive(Debug, Clone)]
pub struct ExecutorEnv {
    pub data_dir: PathBuf,
    pub serial: String,
}

/// Registers all executors.
pub fn install(dispatcher: &mut Dispatcher, env: &ExecutorEnv) {
    let _ = env;
    dispatcher.register(Box::new(DataExecutor::new()));
}
