//! `rtctl load NAME`: asks hv to restart the RT partition with another app of its image,
//! through hv's control page (each store and load traps to hv, which decides; see
//! `hv_core::app_load`), then follows the request's status until the partition reports
//! ready or hv refuses. Linux keeps running throughout; this module only stores the
//! request and reads its status.

use std::time::{Duration, Instant};

use abi::bootargs::RT_APPS;
use abi::{LoadRefusal, LoadStatus, LOAD_NAME_MAX};
use channel::Word;
use core::sync::atomic::Ordering;

const NAME: usize = (abi::CONTROL_LOAD_NAME / 8) as usize;
const LOAD: usize = (abi::CONTROL_LOAD / 8) as usize;

/// How long a restart may take before `load` gives up waiting (guest-rt boots in well
/// under a second of guest time; this only bounds a hang, and says so).
const PATIENCE: Duration = Duration::from_secs(120);

/// The two name words of `name`, or why it cannot be one.
pub fn name_words(name: &str) -> Result<[u64; 2], String> {
    if name.is_empty() || name.len() > LOAD_NAME_MAX || name.bytes().any(|b| b == 0) {
        return Err(format!(
            "`{name}`: an app name is 1 to {LOAD_NAME_MAX} bytes without NUL (one of {})",
            app_names()
        ));
    }
    let mut bytes = [0u8; LOAD_NAME_MAX];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    let word = |half: &[u8]| u64::from_le_bytes(half.try_into().expect("8 bytes"));
    Ok([word(&bytes[..8]), word(&bytes[8..])])
}

/// guest-rt's apps, as `a|b|c`.
pub fn app_names() -> String {
    RT_APPS.iter().map(|a| a.name).collect::<Vec<_>>().join("|")
}

/// The message for a refusal.
pub fn refused(name: &str, why: LoadRefusal) -> String {
    let mut m = format!("load `{name}`: hv refused: {}", why.reason());
    if why == LoadRefusal::UnknownApp {
        m.push_str(&format!("; the apps are {}", app_names()));
    }
    m
}

fn status(page: &[Word]) -> Result<LoadStatus, String> {
    let word = page
        .get(LOAD)
        .ok_or("the control page is too small")?
        .load(Ordering::Relaxed);
    LoadStatus::from_word(word)
        .ok_or_else(|| format!("hv's load status {word:#x} is not one rtctl knows"))
}

/// Sends the request for `name` and waits for its outcome; `progress` gets one line as the
/// partition restarts. Ok: the boot count the app runs in. hv holds one request: the
/// caller holds the writer lock, so two `rtctl load`s take turns.
pub fn load(page: &[Word], name: &str, mut progress: impl FnMut(&str)) -> Result<u32, String> {
    let words = name_words(name)?;
    let (Some(low), Some(high), Some(go)) = (page.get(NAME), page.get(NAME + 1), page.get(LOAD))
    else {
        return Err("the control page is too small".into());
    };
    low.store(words[0], Ordering::Relaxed);
    high.store(words[1], Ordering::Relaxed);
    go.store(u64::from(abi::CONTROL_LOAD_MAGIC), Ordering::Relaxed);
    let start = Instant::now();
    let mut told = false;
    let ours = |app: u8| {
        let asked = RT_APPS.iter().position(|a| a.name == name);
        if asked == Some(usize::from(app)) {
            Ok(())
        } else {
            Err(format!(
                "load `{name}`: hv's request is for another app (`{}`): another writer of \
                 hv's control page raced this one",
                RT_APPS.get(usize::from(app)).map_or("?", |a| a.name)
            ))
        }
    };
    loop {
        match status(page)? {
            LoadStatus::Refused(why) => return Err(refused(name, why)),
            LoadStatus::Done { boot, app } => {
                ours(app)?;
                return Ok(boot);
            }
            LoadStatus::Failed { boot, app } => {
                ours(app)?;
                return Err(format!(
                    "load `{name}`: the RT partition booted it (boot {boot}) and then stopped \
                     (hv's console says why); another `rtctl load` restarts it"
                ));
            }
            LoadStatus::Restarting { boot, app } => {
                ours(app)?;
                if !told {
                    progress(&format!(
                        "load: hv accepted `{name}`: the RT partition restarts (boot {boot}); \
                         Linux keeps running\n"
                    ));
                    told = true;
                }
                if start.elapsed() > PATIENCE {
                    return Err(format!(
                        "load `{name}`: the RT partition has not reported ready for boot \
                         {boot} after {} s (hv's console says why)",
                        PATIENCE.as_secs()
                    ));
                }
            }
            LoadStatus::None => {
                return Err(format!(
                    "load `{name}`: hv took no request (is this hv older than `rtctl load`?)"
                ))
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_two_little_endian_words() {
        assert_eq!(
            name_words("control").unwrap(),
            [u64::from_le_bytes(*b"control\0"), 0]
        );
        let w = name_words("kernel-bench").unwrap();
        assert_eq!(w[0].to_le_bytes(), *b"kernel-b");
        assert_eq!(w[1].to_le_bytes(), *b"ench\0\0\0\0");
        assert!(name_words(&"x".repeat(16)).is_ok());
        for bad in ["", "seventeen-chars!!", "a\0b"] {
            let e = name_words(bad).unwrap_err();
            assert!(e.contains("latency|control"), "{e}");
        }
    }

    #[test]
    fn an_unknown_app_refusal_lists_the_apps() {
        let m = refused("nope", LoadRefusal::UnknownApp);
        assert!(
            m.contains("`nope`") && m.contains("latency|control|kernel-bench"),
            "{m}"
        );
        let m = refused("control", LoadRefusal::NotAllowed);
        assert!(m.contains("load_from_linux"), "{m}");
    }
}
