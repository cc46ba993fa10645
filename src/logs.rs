//! Logs of the node on the network (`moot serve`, `moot sync`, `moot hub join`): `tracing`
//! events from `moot-net` and the node, written to stderr.
//!
//! `MOOT_LOG` (or else `RUST_LOG`) sets the filter in `tracing-subscriber`'s `EnvFilter`
//! syntax, e.g. `MOOT_LOG=debug` (frames and ops counted) or `MOOT_LOG=moot_net=debug,libp2p=info`.
//! Without either: for `moot serve`, connections, dials and ops taken in at `info`; for the
//! one-shot commands and with `--json`, warnings only (such as a misbehaving peer).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Starts writing logs to stderr (once; later calls do nothing); `progress`: the default
/// filter shows the node's progress (`info`), else warnings only.
pub fn init(progress: bool) {
    let filter = ["MOOT_LOG", "RUST_LOG"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(if progress {
                "warn,moot=info,moot_net=info,moot_node=info"
            } else {
                "warn"
            })
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
