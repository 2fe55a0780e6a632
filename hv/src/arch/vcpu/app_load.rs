//! `rtctl load NAME` carried out: Linux's control-page request, decided by
//! [`hv_core::app_load`], stops the RT partition (a kick to each of its running CPUs) so
//! that its ordinary restart reloads it with the chosen app's DTB. Runs on the Linux CPU
//! that trapped; it takes only the RT partition's state lock, as any restart does, and
//! never waits for the RT side to stop.

use alloc::vec::Vec;
use log::{info, warn};
use spin::Mutex;

use abi::bootargs::RT_APPS;
use hv_core::app_load::{LoadDesk, RtPartition};
use hv_core::running::Running;

use super::{kick_all, partitions, restart_stopped};

/// The request's words and outcome (one Linux partition asks).
static DESK: Mutex<LoadDesk> = Mutex::new(LoadDesk::new());

/// The RT partition a load is for: the loadable one, else the first started one without
/// a console (whose refusal then says it is not loadable).
fn rt_partition() -> Option<&'static Running> {
    let mut rts = partitions().iter().filter(|p| !p.is_linux());
    let first = rts.clone().next();
    rts.find(|p| p.dtbs.is_loadable()).or(first)
}

pub(super) fn set_name_word(which: usize, value: u64) {
    DESK.lock().set_name_word(which, value);
}

/// Linux asked for the load its name words say.
pub(super) fn request() {
    let rt = rt_partition();
    let mut desk = DESK.lock();
    let before = desk.last();
    let view = |rt: &Running, state: &hv_core::partition::PartitionState| RtPartition {
        allowed: rt.dtbs.is_loadable(),
        restarting: state.restarting(),
        boots: state.boots(),
    };
    let (decision, restart, running) = match rt {
        None => (desk.request(None).map(|_| 0), false, Vec::new()),
        // Not loadable: decided without the partition's lock, which its CPUs take on
        // every trap (a refused request storm must not contend it).
        Some(rt) if !rt.dtbs.is_loadable() => {
            let refused = RtPartition {
                allowed: false,
                restarting: false,
                boots: 0,
            };
            (desk.request(Some(refused)), false, Vec::new())
        }
        Some(rt) => {
            let mut state = rt.state.lock();
            let decision = desk.request(Some(view(rt, &state)));
            if let Ok(app) = decision {
                rt.dtbs.choose(app);
                state.stop_for_load();
                super::super::channel::publish_run(&state);
            }
            (decision, state.take_restart(), state.running_cpus())
        }
    };
    let status = desk.last();
    drop(desk);
    let name = rt.map_or("-", |p| p.name);
    match decision {
        Ok(app) => {
            let boot = match status {
                abi::LoadStatus::Restarting { boot, .. } => boot,
                _ => 0,
            };
            info!(
                "rtctl load: partition `{name}` restarts with app `{}` (boot {boot})",
                RT_APPS[app].name
            );
            kick_all(&running);
            if restart {
                // No vCPU of it ran (it was stopped for good, or all its vCPUs had
                // stopped on their own): nobody else will restart it.
                if let Some(rt) = rt {
                    restart_stopped(rt);
                }
            }
        }
        // The same refusal again is not logged again (a request storm stays quiet).
        Err(why) if status != before => {
            warn!(
                "rtctl load: refused for partition `{name}`: {}",
                why.reason()
            );
        }
        Err(_) => {}
    }
}

/// The status word a read of the load register gives.
pub(super) fn status() -> u64 {
    let (boots, ready, stopped_for_good) = rt_partition().map_or((0, false, false), |rt| {
        let state = rt.state.lock();
        (
            state.boots(),
            state.stopped().is_none() && state.all_ready(),
            state.stopped_for_good(),
        )
    });
    DESK.lock().status(boots, ready, stopped_for_good).word()
}
