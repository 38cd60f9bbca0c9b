//! Installs every command executor into the dispatcher. Each family lives in
//! its own module; this is the one place that lists them.

use super::account::AccountExecutor;
use super::data::DataExecutor;
use super::options::OptionsExecutor;
use super::Dispatcher;
use crate::upgrade::executor::{UpgradeExecutor, UpgradeSettings};
use crate::upgrade::package::InstallPolicy;
use crate::upgrade::slots::Slots;
use crate::upgrade::space::DfFreeSpace;
use std::path::PathBuf;

/// What executors need to know about their surroundings at construction.
#[derive(Debug, Clone, Default)]
pub struct ExecutorEnv {
    pub data_dir: PathBuf,
    pub serial: String,
    /// Where UPGRADE installs; `None` leaves UPGRADE unsupported (-708).
    pub upgrade: Option<UpgradeEnv>,
}

/// The UPGRADE executor's settings.
#[derive(Debug, Clone)]
pub struct UpgradeEnv {
    /// Root of the A/B slot layout.
    pub slots_root: PathBuf,
    /// The key packages must be signed with; without one, only
    /// `allow_unsigned` lets a package through.
    pub public_key: Option<rsa::RsaPublicKey>,
    /// Accept unsigned packages (`[upgrade] allow_unsigned`).
    pub allow_unsigned: bool,
    pub trial: crate::upgrade::slots::TrialPolicy,
}

/// Registers all executors.
pub fn install(dispatcher: &mut Dispatcher, env: &ExecutorEnv) {
    dispatcher.register(Box::new(DataExecutor::new()));
    dispatcher.register(Box::new(OptionsExecutor));
    dispatcher.register(Box::new(AccountExecutor::new(&env.data_dir.join("tmp"))));
    dispatcher.register(Box::new(crate::commands::test_host::TestHostExecutor));
    dispatcher.register(Box::new(crate::commands::reboot::RebootExecutor));
    if let Some(upgrade) = &env.upgrade {
        let mut policy = InstallPolicy::for_running_firmware();
        policy.public_key = upgrade.public_key.clone();
        policy.allow_unsigned = upgrade.allow_unsigned;
        dispatcher.register(Box::new(UpgradeExecutor::new(UpgradeSettings {
            work_dir: env.data_dir.join("upgrade"),
            slots: Slots::new(&upgrade.slots_root),
            policy,
            trial: upgrade.trial,
            free_space: Box::new(DfFreeSpace),
        })));
    }
}

/// Registers the executors that need the running access-control engine
/// (CONTROL DEVICE). Without them those commands are answered -13.
pub fn install_engine(dispatcher: &mut Dispatcher, engine: crate::engine::EngineHandle) {
    dispatcher.register(Box::new(
        crate::commands::control_device::ControlExecutor::new(engine),
    ));
}
