//! Bundle commands: a hub's signed ops to and from a file (sneakernet).

use moot_state::Lane;
use serde_json::json;

use crate::cli::{BundleCommand, Global, LaneArg};
use crate::node_cmd::{NodeResult as _, esc, open, print, print_beside, print_saved};

pub fn bundle(global: &Global, command: &BundleCommand) -> anyhow::Result<()> {
    match command {
        BundleCommand::Export { file, lane } => {
            let session = open(global)?;
            let hub = session.hub()?;
            let lanes = moot_node::bundle::lanes_of(lane.map(|l| match l {
                LaneArg::Public => Lane::Public,
                LaneArg::Members => Lane::Members,
            }));
            let exported = session.node.export_bundle(&hub, lanes, file).node()?;
            let text = format!(
                "wrote {} ops ({}) to {} ({} bytes)",
                exported.ops,
                exported.lanes,
                esc(&crate::control::shown(file).display().to_string()),
                exported.bytes
            );
            print_beside(global, serde_json::to_value(&exported)?, text, file)
        }
        BundleCommand::Import { file } => {
            let session = open(global)?;
            // Progress on long imports, only when a person watches stderr.
            let terminal = crate::out::stderr_is_terminal();
            let mut last = 0u64;
            let mut progress = |done: u64, total: u64| {
                if terminal && total >= 10_000 && (done == total || done >= last + 5_000) {
                    last = done;
                    crate::out::err_text(&format!("\rimporting: {done}/{total} ops checked"));
                    if done == total {
                        crate::out::err_line("");
                    }
                }
            };
            let imported = session
                .node
                .import_bundle_as(file, &crate::control::shown(file), &mut progress)
                .node()?;
            let text = format!(
                "imported {} new ops of {} in the bundle (hub {}{})\n{}",
                imported.new_ops,
                imported.ops,
                imported.hub_id,
                if imported.new_hub { ", new here" } else { "" },
                esc(&imported.merge.summary())
            );
            print_saved(global, json!(imported), text)
        }
    }
}

pub fn merges(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    let hub = session.hub()?;
    let reports = session.node.merges(&hub).node()?;
    let text = if reports.is_empty() {
        "no merges yet".to_string()
    } else {
        reports
            .iter()
            .map(|r| format!("{}: {}", esc(&r.source), esc(&r.summary())))
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(global, json!({"merges": reports}), text)
}
