//! Identity, keys, hub and roll commands: wiring from the command line to `moot-node`.
//!
//! Every command here opens the data directory through [`open`], which waits for another command
//! using it, and checks `--as` and `--passphrase-file` before anything else, reads included: a
//! wrong passphrase, a missing file or an unknown member id fails every command.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use moot_crypto::{HubId, PublicKey};
use moot_node::{AddAs, MemberUpdate, Node, NodeError, Signer};
use serde_json::json;

use crate::bad_input;
use crate::cli::{Global, HubCommand, KeyCommand, MemberCommand, RoleArg};

/// The longest passphrase file read: a passphrase is a line, not a document.
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// The data directory: --data / MOOT_DATA, else the platform data dir.
pub(crate) fn data_dir(global: &Global) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &global.data {
        return Ok(dir.clone());
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("moot"));
    }
    let home = std::env::var_os("HOME").context("no --data given and HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/moot"))
}

/// A node error as an `anyhow` error, marking the bad-input kinds (exit 2).
fn node_error(error: NodeError) -> anyhow::Error {
    match error {
        NodeError::BadText { .. } | NodeError::NothingToUpdate => {
            bad_input(anyhow::Error::new(error))
        }
        NodeError::Keystore {
            source: moot_crypto::keystore::KeystoreError::NeedsPassphrase,
            ..
        } => anyhow::Error::new(error).context(
            "a passphrase is needed (give the file holding it: --passphrase-file FILE, or \
             MOOT_PASSPHRASE_FILE)",
        ),
        // A client's file passed to a running node is named as the client gave it.
        NodeError::File { path, source } => anyhow::Error::new(NodeError::File {
            path: crate::control::shown(&path),
            source,
        }),
        NodeError::NotAFile { path, what } => anyhow::Error::new(NodeError::NotAFile {
            path: crate::control::shown(&path),
            what,
        }),
        other => anyhow::Error::new(other),
    }
}

/// `?` for node results, keeping bad input apart.
pub(crate) trait NodeResult<T> {
    fn node(self) -> anyhow::Result<T>;
}

impl<T> NodeResult<T> for Result<T, NodeError> {
    fn node(self) -> anyhow::Result<T> {
        self.map_err(node_error)
    }
}

/// An opened node and the keys acted with when they were unsealed to check `--as` or
/// `--passphrase-file`.
pub(crate) struct Session {
    pub(crate) node: std::sync::Arc<Node>,
    as_signer: Option<Signer>,
    passphrase: Option<String>,
    /// `--hub`, parsed.
    hub: Option<HubId>,
}

/// How a command uses the node and `--passphrase-file`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// `init`: may create the data directory; the passphrase is the new key's.
    Make,
    /// `key new`: the passphrase is the new key's.
    NewKey,
    /// `key protect`: the passphrase is the new one; `--as` need only name a key held here.
    Protect,
    /// Every other command: acts as (or reads as) `--as`'s key or the node's own, and a given
    /// passphrase must open it.
    Act,
}

/// Checks the flags every node command shares (`--passphrase-file`, `--as`, `--hub`), then
/// opens the node, waiting for another command using it. Only [`Use::Make`] may create the
/// data directory: for every other command a missing directory or key file is an error (a
/// mistyped `--data` must not quietly become a new node). A given passphrase is checked for
/// every command, reads included: it must open the key acted as.
fn open_for(global: &Global, how: Use) -> anyhow::Result<Session> {
    let served = crate::control::served();
    let passphrase = match &served {
        // Read by the client of the running node's socket, and passed over it.
        Some(served) => served.passphrase.clone(),
        // Passed by a client of the web UI (see `http_cmd`), or read from the file.
        None => match crate::control::passed_passphrase() {
            Some(passed) => Some(passed),
            None => passphrase(global)?,
        },
    };
    let as_member = global.as_member.as_deref().map(member_id).transpose()?;
    // Malformed `--hub` is bad input for every node command, not only those that use a hub.
    let hub = global.hub.as_deref().map(hub_id).transpose()?;
    let node = match served {
        // A running node has the directory open: the command runs on it.
        Some(served) => served.node,
        None => std::sync::Arc::new(open_dir(global, how)?),
    };
    if let Some(note) = node.key_file_note() {
        crate::out::note(global.json, note.to_string());
    }
    // A passphrase given for a key stored without one opens nothing: said, so that no one
    // believes a key protected that is not (a script's passphrase for several keys still runs).
    if how == Use::Act
        && passphrase.is_some()
        && matches!(node.key_has_passphrase(as_member), Ok(false))
    {
        let as_flag = as_member.map(|m| format!(" --as {m}")).unwrap_or_default();
        crate::out::note(
            global.json,
            format!(
                "the key acted as is stored without a passphrase, so the passphrase given opened \
                 nothing: anyone who can read {} can act as this member. To protect it: `moot \
                 key protect{as_flag} --passphrase-file FILE`",
                moot_text::escape(
                    &node
                        .dir()
                        .join(moot_node::keyfile::KEYS_FILE)
                        .display()
                        .to_string()
                )
            ),
        );
    }
    session(node, how, as_member, passphrase, hub)
}

/// Opens the data directory, waiting for another command using it.
fn open_dir(global: &Global, how: Use) -> anyhow::Result<Node> {
    let dir = data_dir(global)?;
    // The wait message is prose for a person; with `--json` stderr is reserved for the one
    // JSON error object a script parses, so it is left out there (a script sees the wait as
    // time, and a `Busy` error if it lasts).
    let json = global.json;
    let mut on_wait = || {
        if !json {
            eprintln!(
                "moot: waiting for another moot command using {}…",
                moot_text::escape(&dir.display().to_string())
            );
        }
    };
    let opened = if how == Use::Make {
        Node::open_waiting(&dir, moot_node::LOCK_WAIT, &mut on_wait)
    } else {
        Node::open_existing(&dir, moot_node::LOCK_WAIT, &mut on_wait)
    };
    opened.map_err(|error| match error {
        // Already names the directory, and says what to do.
        NodeError::NoNode { .. } => node_error(error),
        other => node_error(other).context(format!(
            "opening the node at {}",
            moot_text::escape(&dir.display().to_string())
        )),
    })
}

/// Tail of [`open_for`]: the keys acted as, checked.
fn session(
    node: std::sync::Arc<Node>,
    how: Use,
    as_member: Option<PublicKey>,
    passphrase: Option<String>,
    hub: Option<HubId>,
) -> anyhow::Result<Session> {
    let as_signer = match (how, as_member) {
        (Use::Protect, Some(member)) => {
            node.holds(&member).node()?;
            None
        }
        (Use::Protect | Use::Make | Use::NewKey, None) => None,
        (Use::Make | Use::NewKey, Some(member)) => {
            Some(node.signer(Some(member), passphrase.as_deref()).node()?)
        }
        (Use::Act, Some(member)) => Some(node.signer(Some(member), passphrase.as_deref()).node()?),
        // No `--as`, but a passphrase: it is for the node's own key, and must open it (a wrong
        // one fails reads too, as with `--as`). Without a passphrase, reads need no key.
        (Use::Act, None) if passphrase.is_some() => {
            Some(node.signer(None, passphrase.as_deref()).node()?)
        }
        (Use::Act, None) => None,
    };
    Ok(Session {
        node,
        as_signer,
        passphrase,
        hub,
    })
}

pub(crate) fn open(global: &Global) -> anyhow::Result<Session> {
    open_for(global, Use::Act)
}

impl Session {
    /// The keys to act with: `--as`'s, or the node's own.
    pub(crate) fn signer(&mut self) -> anyhow::Result<Signer> {
        match self.as_signer.take() {
            Some(signer) => Ok(signer),
            None => self.node.signer(None, self.passphrase.as_deref()).node(),
        }
    }

    /// The hub to act on: `--hub`, or the default.
    pub(crate) fn hub(&self) -> anyhow::Result<HubId> {
        self.node.hub(self.hub).node()
    }
}

pub(crate) fn passphrase(global: &Global) -> anyhow::Result<Option<String>> {
    let Some(path) = &global.passphrase_file else {
        return Ok(None);
    };
    let text = read_passphrase(path).map_err(bad_input)?;
    // Others may read it: said, not refused (the passphrase is read already; a script's file
    // in a shared directory is the user's choice).
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            crate::out::note(
                global.json,
                format!(
                    "the passphrase file {} can be read by other users: make it yours only \
                     (`chmod 600 FILE`)",
                    moot_text::escape(&path.display().to_string())
                ),
            );
        }
    }
    Ok(Some(text))
}

/// The passphrase in a passphrase file: its first line (without the line end, `\n` or
/// `\r\n`), as the help and docs say; whatever follows is ignored. The file is read with a
/// bound: a passphrase is a line, not a document.
fn read_passphrase(path: &Path) -> anyhow::Result<String> {
    let shown = moot_text::escape(&path.display().to_string()).into_owned();
    let file = std::fs::File::open(path)
        .with_context(|| format!("reading the passphrase file {shown}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PASSPHRASE_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the passphrase file {shown}"))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_PASSPHRASE_FILE,
        "the passphrase file {shown} is longer than {MAX_PASSPHRASE_FILE} bytes: it should hold \
         just the passphrase, on its first line"
    );
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the passphrase file {shown} is not UTF-8 text"))?;
    let first = text.split('\n').next().unwrap_or_default();
    let first = first.strip_suffix('\r').unwrap_or(first);
    anyhow::ensure!(
        !first.is_empty(),
        "the passphrase file {shown} has nothing on its first line: put the passphrase there"
    );
    Ok(first.to_string())
}

pub(crate) fn member_id(text: &str) -> anyhow::Result<PublicKey> {
    text.parse::<PublicKey>()
        .with_context(|| format!("{text:?} is not a member id (64 hex digits)"))
        .map_err(bad_input)
}

fn hub_id(text: &str) -> anyhow::Result<HubId> {
    moot_node::parse_hub_id(text)
        .with_context(|| format!("{text:?} is not a hub id (64 hex digits)"))
        .map_err(bad_input)
}

/// A name from the command line, normalised and checked before anything is opened or written.
fn text_arg(what: &'static str, text: &str) -> anyhow::Result<String> {
    moot_node::clean_text(what, text).node()
}

/// Prints the JSON document or the text view. Text from users in `text` must already be
/// escaped with `moot_text::escape`.
pub(crate) fn print(global: &Global, value: serde_json::Value, text: String) -> anyhow::Result<()> {
    if global.json {
        crate::out::line(&value.to_string())
    } else {
        crate::out::line(&text)
    }
}

/// [`print`] for a command that wrote `file`: on stderr if `file` is the command's standard
/// output (`/dev/stdout`, a link to it, the file it goes to), so that what it wrote there
/// stays whole (`moot bundle export /dev/stdout | ssh hall moot bundle import /dev/stdin`).
pub(crate) fn print_beside(
    global: &Global,
    value: serde_json::Value,
    text: String,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    if crate::control::is_stdout(file) {
        crate::out::err_line(&if global.json { value.to_string() } else { text });
        Ok(())
    } else {
        print(global, value, text)
    }
}

/// [`print`] after a change was committed: if printing fails, say the change was saved, so a
/// script does not retry something that happened. (A closed pipe stays quiet.)
pub(crate) fn print_saved(
    global: &Global,
    value: serde_json::Value,
    text: String,
) -> anyhow::Result<()> {
    crate::out::note_saved();
    print(global, value, text).map_err(|error| {
        if error.downcast_ref::<crate::out::StdoutClosed>().is_some() {
            error
        } else {
            error.context("the change was saved, but printing the result failed")
        }
    })
}

pub(crate) fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    moot_text::escape(text)
}

/// Says on stderr that a new key has no passphrase, and how to add one.
fn warn_unprotected(node: &Node, member: &PublicKey, own: bool) {
    let keys = node.dir().join(moot_node::keyfile::KEYS_FILE);
    let as_flag = if own {
        String::new()
    } else {
        format!(" --as {member}")
    };
    crate::out::err_line(&format!(
        "moot: warning: this member key is stored without a passphrase, in {} (readable only by \
         you). Anyone who can read that file, or a backup of it, can act as this member. To \
         protect it: write a passphrase into a file only you can read (chmod 600 FILE) and run \
         `moot key protect{as_flag} --passphrase-file FILE`.",
        moot_text::escape(&keys.display().to_string())
    ));
}

/// `moot serve` on a data directory with no node yet: creates the node's keys (named after
/// `$USER`, changeable later) and says how to found or join a hub.
/// `web`: the node goes on to serve the web UI, where the hub can be made (the text says so).
pub(crate) fn first_run(global: &Global, web: bool) -> anyhow::Result<()> {
    let name = std::env::var("USER")
        .ok()
        .map(|u| moot_text::normalize(&u))
        .filter(|u| !u.is_empty() && u.len() <= 64)
        .unwrap_or_else(|| "Moot node".to_string());
    let session = open_for(global, Use::Make)?;
    let identity = session
        .node
        .init(&name, session.passphrase.as_deref())
        .node()?;
    print(
        global,
        json!({
            "member_id": identity.member_id,
            "node_id": identity.node_id,
            "next": ["moot hub create NAME", "moot hub join TICKET"],
        }),
        format!(
            "created this node's keys (member id {}, node id {}).\nNext: found a hub with \
             `moot hub create NAME`, or join one with `moot hub join TICKET` (a ticket from a \
             node serving it){}",
            identity.member_id,
            shown_node_id(&identity),
            if web {
                ", in another terminal or in the web UI (below)."
            } else {
                "; then run `moot serve` again."
            }
        ),
    )
}

pub fn init(global: &Global, name: &str) -> anyhow::Result<()> {
    let name = text_arg("name", name)?;
    let session = open_for(global, Use::Make)?;
    let identity = session
        .node
        .init(&name, session.passphrase.as_deref())
        .node()?;
    if session.passphrase.is_none()
        && let Ok(member) = identity.member_id.parse::<PublicKey>()
    {
        warn_unprotected(&session.node, &member, true);
    }
    print_saved(
        global,
        json!({"member_id": identity.member_id, "node_id": identity.node_id}),
        format!(
            "member id: {}\nnode id:   {}",
            identity.member_id,
            shown_node_id(&identity)
        ),
    )
}

/// The node id as text: `(protected…)` when its key could not be opened.
fn shown_node_id(identity: &moot_node::Identity) -> &str {
    identity
        .node_id
        .as_deref()
        .unwrap_or("(its key is protected: give its passphrase to see it)")
}

/// Who commands act as: the node's member, or `--as`'s (with the node's id either way).
pub fn id(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    // The node's key was opened already if the passphrase given is its own: no second Argon2.
    let mut identity = session.node.identity().node()?;
    if let Some(signer) = &session.as_signer {
        let member = signer.member_id().to_string();
        if member == identity.member_id && identity.node_id.is_none() {
            identity.node_id = signer.node_id();
        }
        if member != identity.member_id {
            let keys = session.node.keys().node()?;
            identity.name = keys
                .into_iter()
                .find(|k| k.member_id == member)
                .map(|k| k.name)
                .unwrap_or_default();
            identity.member_id = member;
        }
    }
    print(
        global,
        json!({"member_id": identity.member_id, "node_id": identity.node_id, "name": identity.name}),
        format!(
            "{}\nmember id: {}\nnode id:   {}",
            esc(&identity.name),
            identity.member_id,
            shown_node_id(&identity)
        ),
    )
}

pub fn key(global: &Global, command: &KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::New { name } => {
            let name = text_arg("name", name)?;
            let session = open_for(global, Use::NewKey)?;
            let member = session
                .node
                .new_member_key(&name, session.passphrase.as_deref())
                .node()?;
            if session.passphrase.is_none() {
                warn_unprotected(&session.node, &member, false);
            }
            print_saved(
                global,
                json!({"member_id": member.to_string()}),
                format!("member id: {member}"),
            )
        }
        KeyCommand::NewDevice => {
            let session = open(global)?;
            let as_member = global.as_member.as_deref().map(member_id).transpose()?;
            let passphrase = session.passphrase.clone();
            let device = session
                .node
                .new_device_key(as_member, passphrase.as_deref())
                .node()?;
            print_saved(
                global,
                json!({"device": device.to_string()}),
                format!("new device key {device}: it is certified with this node's next write"),
            )
        }
        KeyCommand::Protect => {
            let session = open_for(global, Use::Protect)?;
            let passphrase = session.passphrase.clone().ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "give the new passphrase with --passphrase-file FILE (a file only you can \
                     read, holding the passphrase)"
                ))
            })?;
            let as_member = global.as_member.as_deref().map(member_id).transpose()?;
            let member = session.node.protect_key(as_member, &passphrase).node()?;
            print_saved(
                global,
                json!({"member_id": member.to_string(), "protected": true}),
                format!("member key {member} is now protected by a passphrase"),
            )
        }
    }
}

pub fn activity(global: &Global, limit: usize) -> anyhow::Result<()> {
    let session = open(global)?;
    let hub = session.hub()?;
    let list = session.node.activity(&hub, limit).node()?;
    let text = list
        .iter()
        .map(|a| {
            format!(
                "{}  {}  {} ({}, {} lane)",
                a.op_id,
                a.name
                    .as_deref()
                    .map_or_else(|| "(not on the roll)".to_string(), |n| esc(n).into_owned()),
                a.kind,
                a.family,
                a.lane
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(global, json!({"activity": list}), text)
}

pub fn keys(global: &Global) -> anyhow::Result<()> {
    let keys = open(global)?.node.keys().node()?;
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
            format!("{}  {}  {}", k.member_id, esc(&k.name), flags.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(global, json!({"keys": keys}), text)
}

pub fn hubs(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    let hubs = session.node.hubs().node()?;
    let text = if hubs.is_empty() {
        "no hubs yet: create one with `moot hub create NAME`".to_string()
    } else {
        hubs.iter()
            .map(|h| {
                format!(
                    "{} {}  {}",
                    if h.default { "*" } else { " " },
                    h.hub_id,
                    esc(&h.name)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(global, json!({"hubs": hubs}), text)
}

pub fn hub(global: &Global, command: &HubCommand) -> anyhow::Result<()> {
    match command {
        HubCommand::Ticket { addr } => {
            let session = open(global)?;
            let hub = session.hub()?;
            // Without --addr: where the running node listens (if it serves this hub).
            let served = crate::control::served()
                .filter(|s| s.net.hub == hub)
                .map(|s| s.net.ticket_addrs());
            let addrs = match (addr.is_empty(), served) {
                (false, _) => addr.clone(),
                // As many as fit in a ticket.
                (true, Some(addrs)) => {
                    let fitting = moot_node::serve::make_ticket_fitting(&hub, &addrs).node()?;
                    moot_node::serve::parse_ticket(&fitting).node()?.1
                }
                (true, None) => {
                    return Err(bad_input(anyhow::anyhow!(
                        "give --addr MULTIADDR (where a node serving the hub listens), or run \
                         `moot serve`: then its own addresses are used"
                    )));
                }
            };
            let ticket = moot_node::serve::make_ticket(&hub, &addrs).node()?;
            moot_node::serve::parse_ticket(&ticket).node()?;
            print(
                global,
                json!({"hub_id": hub.to_string(), "ticket": ticket}),
                ticket,
            )
        }
        HubCommand::Join { ticket, timeout } => crate::net_cmd::join(global, ticket, *timeout),
        HubCommand::Create { name } => {
            let name = text_arg("hub name", name)?;
            let mut session = open(global)?;
            let signer = session.signer()?;
            let before = session.node.hubs().node()?.into_iter().find(|h| h.default);
            let hub = session.node.create_hub(&name, &signer).node()?;
            // The new hub is the default now: say so, and how to go back, when there was one.
            let mut text = format!("hub id: {hub}");
            if let Some(before) = before {
                text.push_str(&format!(
                    "\nthe default hub is now this one (it was {}, {}: `moot hub use {}` goes back)",
                    esc(&before.name),
                    before.hub_id,
                    before.hub_id
                ));
            }
            print_saved(global, json!({"hub_id": hub.to_string()}), text)
        }
        HubCommand::Use { hub_id: text } => {
            let hub = hub_id(text)?;
            let session = open(global)?;
            session.node.use_hub(&hub).node()?;
            let name = session.node.hub_name(&hub).node()?;
            print_saved(
                global,
                json!({"hub_id": hub.to_string(), "name": name}),
                format!("default hub: {hub}  {}", esc(&name)),
            )
        }
        HubCommand::Show => {
            let session = open(global)?;
            let hub = session.hub()?;
            let summary = session.node.hub_summary(&hub).node()?;
            let text = format!(
                "{}\nhub id:   {}\nfounder:  {}\nmembers:  {}\nstewards: {}\nguests:   {}\naccess:   {}",
                esc(&summary.name),
                summary.hub_id,
                summary.founder,
                summary.members,
                summary.stewards,
                summary.guests,
                summary.access
            );
            print(global, serde_json::to_value(&summary)?, text)
        }
        HubCommand::Access { access } => {
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let members_only = *access == crate::cli::AccessArg::MembersOnly;
            let op = session
                .node
                .set_access(&hub, &signer, members_only)
                .node()?;
            let access = if members_only {
                "members-only"
            } else {
                "public"
            };
            print_saved(
                global,
                json!({"hub_id": hub.to_string(), "access": access, "op_id": op.to_string()}),
                format!("hub {hub} is now {access}"),
            )
        }
    }
}

fn add_as(role: RoleArg) -> AddAs {
    match role {
        RoleArg::Member => AddAs::Member,
        RoleArg::Guest => AddAs::Guest,
        RoleArg::Steward => AddAs::Steward,
        RoleArg::Convener => AddAs::Convener,
        RoleArg::Coordinator => AddAs::Coordinator,
    }
}

/// `moot member revoke-device DEVICE`.
fn revoke_device(global: &Global, device: &str) -> anyhow::Result<()> {
    let device = device
        .parse::<PublicKey>()
        .with_context(|| format!("{device:?} is not a device key (64 hex digits)"))
        .map_err(bad_input)?;
    let mut session = open(global)?;
    let hub = session.hub()?;
    let signer = session.signer()?;
    let (member, ops) = session.node.revoke_device(&hub, &signer, device).node()?;
    let ids: Vec<String> = ops.iter().map(ToString::to_string).collect();
    print_saved(
        global,
        json!({"member_id": member.to_string(), "device": device.to_string(), "op_ids": ids}),
        format!("device {device} revoked ({} op(s) written)", ids.len()),
    )
}

pub fn member(global: &Global, command: &MemberCommand) -> anyhow::Result<()> {
    // Check every argument before opening anything, so bad input writes nothing.
    enum Change {
        Add(String, Option<String>, AddAs),
        Update(MemberUpdate),
        Remove,
    }
    let (member, change) = match command {
        MemberCommand::Add {
            member_id: text,
            name,
            constituency,
            role,
        } => {
            let constituency = match constituency {
                Some(c) => moot_node::clean_optional("constituency", c).node()?,
                None => None,
            };
            (
                member_id(text)?,
                Change::Add(text_arg("name", name)?, constituency, add_as(*role)),
            )
        }
        MemberCommand::Update {
            member_id: text,
            name,
            constituency,
            role,
        } => {
            let update = MemberUpdate {
                name: name.as_deref().map(|n| text_arg("name", n)).transpose()?,
                role: role.map(add_as),
                constituency: match constituency {
                    Some(c) => Some(moot_node::clean_optional("constituency", c).node()?),
                    None => None,
                },
            };
            if update.name.is_none() && update.role.is_none() && update.constituency.is_none() {
                return Err(node_error(NodeError::NothingToUpdate));
            }
            (member_id(text)?, Change::Update(update))
        }
        MemberCommand::Remove { member_id: text } => (member_id(text)?, Change::Remove),
        MemberCommand::RevokeDevice { device } => return revoke_device(global, device),
    };
    let mut session = open(global)?;
    let hub = session.hub()?;
    let signer = session.signer()?;
    let node = &session.node;
    let ops = match change {
        Change::Add(name, constituency, role) => {
            node.add_member(&hub, &signer, member, &name, constituency, role)
        }
        Change::Update(update) => node.update_member(&hub, &signer, member, &update),
        Change::Remove => node.remove_member(&hub, &signer, member),
    }
    .node()?;
    let ids: Vec<String> = ops.iter().map(ToString::to_string).collect();
    let text = match ops.len() {
        0 => "nothing changed: the roll already says so (no op written)".to_string(),
        1 => "done (1 op written)".to_string(),
        n => format!("done ({n} ops written)"),
    };
    print_saved(
        global,
        json!({"member_id": member.to_string(), "op_ids": ids}),
        text,
    )
}

pub fn members(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    let hub = session.hub()?;
    let members = session.node.members(&hub).node()?;
    let text = members
        .iter()
        .map(|m| {
            format!(
                "{}  {:<20} {:<8} {}{}",
                m.member_id.get(..16).unwrap_or(&m.member_id),
                esc(&m.name),
                m.status,
                m.roles.join(","),
                m.constituency
                    .as_ref()
                    .map(|c| format!("  ({})", esc(c)))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(global, json!({"members": members}), text)
}
