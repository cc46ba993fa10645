//! Identity, keys, hub and roll commands: wiring from the command line to `moot-node`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use moot_crypto::PublicKey;
use moot_node::{AddAs, Node};
use serde_json::json;

use crate::bad_input;
use crate::cli::{Global, HubCommand, KeyCommand, MemberCommand, RoleArg};

/// The data directory: --data / MOOT_DATA, else the platform data dir.
fn data_dir(global: &Global) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &global.data {
        return Ok(dir.clone());
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("moot"));
    }
    let home = std::env::var_os("HOME").context("no --data given and HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/moot"))
}

fn open(global: &Global) -> anyhow::Result<Node> {
    let dir = data_dir(global)?;
    Node::open(&dir).with_context(|| format!("opening the node at {}", dir.display()))
}

fn passphrase(global: &Global) -> anyhow::Result<Option<String>> {
    let Some(path) = &global.passphrase_file else {
        return Ok(None);
    };
    let text = read_passphrase(path).map_err(bad_input)?;
    Ok(Some(text))
}

fn read_passphrase(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the passphrase file {}", path.display()))?;
    let text = text.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(
        !text.is_empty(),
        "the passphrase file {} is empty",
        path.display()
    );
    Ok(text)
}

fn member_id(text: &str) -> anyhow::Result<PublicKey> {
    text.parse::<PublicKey>()
        .with_context(|| format!("{text:?} is not a member id"))
        .map_err(bad_input)
}

fn signer(node: &Node, global: &Global) -> anyhow::Result<moot_node::Signer> {
    let member = match &global.as_member {
        Some(text) => Some(member_id(text)?),
        None => None,
    };
    let passphrase = passphrase(global)?;
    Ok(node.signer(member, passphrase.as_deref())?)
}

/// Prints the JSON document or the text view. Text from users in `text` must already be
/// escaped with `moot_text::escape`.
fn print(global: &Global, value: serde_json::Value, text: String) -> anyhow::Result<()> {
    if global.json {
        crate::out::line(&value.to_string())
    } else {
        crate::out::line(&text)
    }
}

pub fn init(global: &Global, name: &str) -> anyhow::Result<()> {
    let node = open(global)?;
    let identity = node.init(name, passphrase(global)?.as_deref())?;
    print(
        global,
        json!({"member_id": identity.member_id, "node_id": identity.node_id}),
        format!(
            "member id: {}\nnode id:   {}",
            identity.member_id, identity.node_id
        ),
    )?;
    Ok(())
}

pub fn id(global: &Global) -> anyhow::Result<()> {
    let identity = open(global)?.identity()?;
    print(
        global,
        json!({"member_id": identity.member_id, "node_id": identity.node_id, "name": identity.name}),
        format!(
            "{}\nmember id: {}\nnode id:   {}",
            identity.name, identity.member_id, identity.node_id
        ),
    )?;
    Ok(())
}

pub fn key(global: &Global, command: &KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::New { name } => {
            let node = open(global)?;
            let member = node.new_member_key(name, passphrase(global)?.as_deref())?;
            print(
                global,
                json!({"member_id": member.to_string()}),
                format!("member id: {member}"),
            )?;
            Ok(())
        }
    }
}

pub fn keys(global: &Global) -> anyhow::Result<()> {
    let keys = open(global)?.keys()?;
    let text = keys
        .iter()
        .map(|k| {
            let mut flags = Vec::new();
            if k.node {
                flags.push("this node");
            }
            if k.protected {
                flags.push("passphrase");
            }
            format!("{}  {}  {}", k.member_id, k.name, flags.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(global, json!({"keys": keys}), text)?;
    Ok(())
}

pub fn hub(global: &Global, command: &HubCommand) -> anyhow::Result<()> {
    match command {
        HubCommand::Create { name } => {
            let node = open(global)?;
            let signer = signer(&node, global)?;
            let hub = node.create_hub(name, &signer)?;
            print(
                global,
                json!({"hub_id": hub.to_string()}),
                format!("hub id: {hub}"),
            )?;
            Ok(())
        }
    }
}

pub fn member(global: &Global, command: &MemberCommand) -> anyhow::Result<()> {
    let node = open(global)?;
    let hub = node.hub(None)?;
    let signer = signer(&node, global)?;
    let (member, ops) = match command {
        MemberCommand::Add {
            member_id: text,
            name,
            constituency,
            role,
        } => {
            let member = member_id(text)?;
            let add_as = match role {
                RoleArg::Member => AddAs::Member,
                RoleArg::Guest => AddAs::Guest,
                RoleArg::Steward => AddAs::Steward,
                RoleArg::Convener => AddAs::Convener,
            };
            (
                member,
                node.add_member(&hub, &signer, member, name, constituency.clone(), add_as)?,
            )
        }
        MemberCommand::Remove { member_id: text } => {
            let member = member_id(text)?;
            (member, node.remove_member(&hub, &signer, member)?)
        }
    };
    let ids: Vec<String> = ops.iter().map(ToString::to_string).collect();
    print(
        global,
        json!({"member_id": member.to_string(), "op_ids": ids}),
        format!("done ({} op(s) written)", ops.len()),
    )?;
    Ok(())
}

pub fn members(global: &Global) -> anyhow::Result<()> {
    let node = open(global)?;
    let hub = node.hub(None)?;
    let members = node.members(&hub)?;
    let text = members
        .iter()
        .map(|m| {
            format!(
                "{}  {:<20} {:<8} {}{}",
                &m.member_id[..16],
                m.name,
                m.status,
                m.roles.join(","),
                m.constituency
                    .as_ref()
                    .map(|c| format!("  ({c})"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(global, json!({"members": members}), text)?;
    Ok(())
}
