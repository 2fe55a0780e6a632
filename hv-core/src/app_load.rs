//! `rtctl load NAME`: what hv decides about Linux's request to restart the RT partition
//! with another app of its image, and which DTB (whose `/chosen/bootargs` names the app)
//! the restart boots from.
//!
//! Owns the request as Linux wrote it (the name words of the control page), the decision
//! and its status, and the RT partition's DTBs. It never stops a vCPU or copies memory:
//! the arch side stops the partition and its ordinary restart (`stop_here`, `load`)
//! reloads it. The choice of DTB is published RCU-style: every DTB is built at boot and
//! never changes, a request stores one index (while the partition still runs the old
//! app), and the restart, which runs only once no vCPU of the partition runs, reads it.
//! Nobody waits for anybody, and nothing is allocated after boot.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use abi::bootargs::RT_APPS;
use abi::{LoadRefusal, LoadStatus, LOAD_NAME_MAX};

/// The RT partition's DTBs: the one it booted with, and one per app of [`RT_APPS`] (empty
/// when the board file does not let Linux load it).
pub struct AppDtbs {
    boot: Vec<u8>,
    apps: Vec<Vec<u8>>,
    /// [`BOOT`] or an index into `apps`.
    chosen: AtomicUsize,
}

const BOOT: usize = usize::MAX;

impl AppDtbs {
    /// A partition that boots only from `boot`.
    pub fn fixed(boot: Vec<u8>) -> Self {
        Self {
            boot,
            apps: Vec::new(),
            chosen: AtomicUsize::new(BOOT),
        }
    }

    /// `boot` and one DTB per app of [`RT_APPS`], in its order (`apps[i]` names
    /// `RT_APPS[i]`).
    pub fn loadable(boot: Vec<u8>, apps: Vec<Vec<u8>>) -> Self {
        debug_assert_eq!(apps.len(), RT_APPS.len());
        Self {
            boot,
            apps,
            chosen: AtomicUsize::new(BOOT),
        }
    }

    /// Whether [`Self::choose`] can pick an app.
    pub fn is_loadable(&self) -> bool {
        !self.apps.is_empty()
    }

    /// The DTB the partition's next (re)start copies.
    pub fn current(&self) -> &[u8] {
        let chosen = self.chosen.load(Ordering::Acquire);
        self.apps.get(chosen).unwrap_or(&self.boot)
    }

    /// The largest of them (what must fit the DTB room).
    pub fn largest(&self) -> usize {
        self.apps
            .iter()
            .chain([&self.boot])
            .map(Vec::len)
            .max()
            .unwrap_or(0)
    }

    /// Makes app `index` of [`RT_APPS`] (an accepted request's) the one the next restart
    /// boots.
    pub fn choose(&self, index: usize) {
        debug_assert!(index < self.apps.len());
        self.chosen.store(index, Ordering::Release);
    }
}

/// `args` (the RT partition's boot arguments) with its `rt.app=` word, if any, replaced by
/// `rt.app=APP` and its `rt.selftest=` words left out (guest-rt refuses an app together
/// with a self-test); every other word is kept, in order.
pub fn args_with_app(args: &str, app: &str) -> String {
    let mut line = String::new();
    let words = args
        .split_ascii_whitespace()
        .filter(|w| !w.starts_with("rt.app=") && !w.starts_with("rt.selftest="));
    for word in words.chain([alloc::format!("rt.app={app}").as_str()]) {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

/// The app a request's name words name: its index in [`RT_APPS`].
pub fn app_of(words: [u64; 2]) -> Option<usize> {
    let mut bytes = [0u8; LOAD_NAME_MAX];
    bytes[..8].copy_from_slice(&words[0].to_le_bytes());
    bytes[8..].copy_from_slice(&words[1].to_le_bytes());
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(LOAD_NAME_MAX);
    // Only NULs may follow the name: "lat\0ency" is not "lat".
    if bytes[len..].iter().any(|&b| b != 0) {
        return None;
    }
    let name = core::str::from_utf8(&bytes[..len]).ok()?;
    RT_APPS.iter().position(|app| app.name == name)
}

/// What hv knows of the RT partition when a request arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtPartition {
    /// Its DTBs are loadable (the board file's `load_from_linux`).
    pub allowed: bool,
    /// A restart is under way (a reset, a fault restart, a load). A partition stopped
    /// for good (powered off, faulted) is not: a load restarts it.
    pub restarting: bool,
    pub boots: u32,
}

/// What Linux wrote at the control page's load words, and the last request's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadDesk {
    name: [u64; 2],
    status: LoadStatus,
}

impl Default for LoadDesk {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadDesk {
    pub const fn new() -> Self {
        Self {
            name: [0; 2],
            status: LoadStatus::None,
        }
    }

    /// Linux wrote name word `which` (0 or 1).
    pub fn set_name_word(&mut self, which: usize, value: u64) {
        self.name[which & 1] = value;
    }

    /// Linux asked for the load: accepted (the app to choose; the caller then stops the
    /// partition) or refused, and the status says so either way. `rt`: the RT partition,
    /// if one was started.
    pub fn request(&mut self, rt: Option<RtPartition>) -> Result<usize, LoadRefusal> {
        let decision = match rt {
            None => Err(LoadRefusal::NoRtPartition),
            Some(rt) if !rt.allowed => Err(LoadRefusal::NotAllowed),
            Some(rt) if rt.restarting => Err(LoadRefusal::Busy),
            Some(rt) => app_of(self.name)
                .map(|app| (app, rt.boots))
                .ok_or(LoadRefusal::UnknownApp),
        };
        match decision {
            Ok((app, boots)) => {
                self.status = LoadStatus::Restarting {
                    boot: boots.saturating_add(1),
                    app: app as u8,
                };
                Ok(app)
            }
            Err(why) => {
                self.status = LoadStatus::Refused(why);
                Err(why)
            }
        }
    }

    /// The status a read gives: a restart counts as done once the partition booted the
    /// time it waited for and every vCPU reported ready, as failed once that boot stopped
    /// for good (`boots`, `ready`, `stopped_for_good`: the partition now).
    pub fn status(&mut self, boots: u32, ready: bool, stopped_for_good: bool) -> LoadStatus {
        if let LoadStatus::Restarting { boot, app } = self.status {
            if boots >= boot && stopped_for_good {
                self.status = LoadStatus::Failed { boot, app };
            } else if boots >= boot && ready {
                self.status = LoadStatus::Done { boot, app };
            }
        }
        self.status
    }

    /// The status now, unchanged (for logging only what changed).
    pub fn last(&self) -> LoadStatus {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn words(name: &[u8]) -> [u64; 2] {
        let mut bytes = [0u8; 16];
        bytes[..name.len()].copy_from_slice(name);
        [
            u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            u64::from_le_bytes(bytes[8..].try_into().unwrap()),
        ]
    }

    fn index(name: &str) -> usize {
        RT_APPS.iter().position(|a| a.name == name).unwrap()
    }

    #[test]
    fn names_are_read_whole_and_exact() {
        assert_eq!(app_of(words(b"control")), Some(index("control")));
        assert_eq!(app_of(words(b"kernel-bench")), Some(index("kernel-bench")));
        for bad in [&b""[..], b"contro", b"controls", b"Control", b"lat\0ency"] {
            assert_eq!(app_of(words(bad)), None, "{bad:?}");
        }
        assert_eq!(app_of([u64::MAX; 2]), None, "not UTF-8, no NUL");
    }

    #[test]
    fn the_app_word_is_replaced_or_added_and_the_rest_kept() {
        assert_eq!(
            args_with_app("rt.app=latency rt.heartbeat-ms=50", "control"),
            "rt.heartbeat-ms=50 rt.app=control"
        );
        assert_eq!(args_with_app("", "latency"), "rt.app=latency");
        assert_eq!(
            args_with_app(
                "rt.selftest=gic  rt.app=x rt.heartbeat-ms=5 rt.app=y",
                "control"
            ),
            "rt.heartbeat-ms=5 rt.app=control"
        );
    }

    const RT: RtPartition = RtPartition {
        allowed: true,
        restarting: false,
        boots: 1,
    };

    #[test]
    fn a_request_is_refused_with_its_reason_and_the_status_says_so() {
        let mut desk = LoadDesk::new();
        assert_eq!(desk.status(1, true, false), LoadStatus::None);
        desk.set_name_word(0, words(b"control")[0]);
        let cases = [
            (None, LoadRefusal::NoRtPartition),
            (
                Some(RtPartition {
                    allowed: false,
                    ..RT
                }),
                LoadRefusal::NotAllowed,
            ),
            (
                Some(RtPartition {
                    restarting: true,
                    ..RT
                }),
                LoadRefusal::Busy,
            ),
        ];
        for (rt, why) in cases {
            assert_eq!(desk.request(rt), Err(why));
            assert_eq!(desk.status(1, true, false), LoadStatus::Refused(why));
        }
        desk.set_name_word(0, words(b"nope")[0]);
        assert_eq!(desk.request(Some(RT)), Err(LoadRefusal::UnknownApp));
    }

    #[test]
    fn an_accepted_request_is_done_once_the_next_boot_is_ready() {
        let mut desk = LoadDesk::new();
        let name = words(b"kernel-bench");
        desk.set_name_word(0, name[0]);
        desk.set_name_word(1, name[1]);
        let app = index("kernel-bench");
        assert_eq!(desk.request(Some(RT)), Ok(app));
        let app = app as u8;
        assert_eq!(
            desk.status(1, true, false),
            LoadStatus::Restarting { boot: 2, app }
        );
        assert_eq!(
            desk.status(1, false, true),
            LoadStatus::Restarting { boot: 2, app },
            "the old boot's stop is not the new boot's failure"
        );
        assert_eq!(
            desk.status(2, false, false),
            LoadStatus::Restarting { boot: 2, app }
        );
        assert_eq!(
            desk.status(2, true, false),
            LoadStatus::Done { boot: 2, app }
        );
        assert_eq!(
            desk.status(3, true, false),
            LoadStatus::Done { boot: 2, app }
        );
    }

    #[test]
    fn a_loaded_boot_that_stops_for_good_is_told_and_another_load_is_taken() {
        let mut desk = LoadDesk::new();
        desk.set_name_word(0, words(b"control")[0]);
        let app = desk.request(Some(RT)).unwrap() as u8;
        assert_eq!(
            desk.status(2, false, true),
            LoadStatus::Failed { boot: 2, app }
        );
        // Stopped for good is not restarting: the next request restarts it.
        let stopped = RtPartition { boots: 2, ..RT };
        assert_eq!(desk.request(Some(stopped)), Ok(app as usize));
        assert_eq!(desk.last(), LoadStatus::Restarting { boot: 3, app });
    }

    #[test]
    fn the_chosen_dtb_is_the_next_restarts() {
        let apps: Vec<Vec<u8>> = (0..RT_APPS.len()).map(|i| vec![i as u8; i + 2]).collect();
        let dtbs = AppDtbs::loadable(vec![0xbb; 40], apps);
        assert!(dtbs.is_loadable());
        assert_eq!(dtbs.current(), &[0xbb; 40][..]);
        assert_eq!(dtbs.largest(), 40);
        dtbs.choose(1);
        assert_eq!(dtbs.current(), &[1, 1, 1][..]);
        let fixed = AppDtbs::fixed(vec![7]);
        assert!(!fixed.is_loadable());
        assert_eq!(fixed.current(), &[7][..]);
    }
}
