//! Installs every command executor into the dispatcher. Each family lives in
//! its own module; this is the one place that lists them.

use super::account::AccountExecutor;
use super::data::DataExecutor;
use super::options::OptionsExecutor;
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
    dispatcher.register(Box::new(DataExecutor::new()));
    dispatcher.register(Box::new(OptionsExecutor));
    dispatcher.register(Box::new(AccountExecutor::new(&env.data_dir.join("tmp"))));
}
