//! The command-line grammar (clap). The contract scripts rely on is `docs/CLI.md`'s: commands,
//! flags and JSON fields may be added, never renamed or removed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Moot: a peer-to-peer, offline-first hub for member-run organisations.
#[derive(Debug, Parser)]
#[command(name = "moot", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// Print one machine-readable JSON document instead of the human-friendly view.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the node keeps its identity and store [default: $XDG_DATA_HOME/moot or
    /// ~/.local/share/moot].
    #[arg(long, global = true, env = "MOOT_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Act as another member key held on this node (default: the node's own member key).
    #[arg(long = "as", global = true, env = "MOOT_AS", value_name = "MEMBER_ID")]
    pub as_member: Option<String>,
    /// File holding the passphrase of the key acted as (or of a new key): the passphrase on its
    /// first line, the file readable only by you (`chmod 600 FILE`), at most 4 KiB.
    #[arg(long, global = true, env = "MOOT_PASSPHRASE_FILE", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The hub a command acts on (default: the node's default hub; see `moot hubs`).
    #[arg(long, global = true, env = "MOOT_HUB", value_name = "HUB_ID")]
    pub hub: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count a STAR (or Bloc STAR) election from a CSV file of score ballots. No node needed.
    Tally(TallyArgs),
    /// Create this node's member key and device key.
    Init {
        /// Your name, as the roll shows it.
        #[arg(long)]
        name: String,
    },
    /// Show this node's identity.
    Id,
    /// Member keys held on this node.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// List the member keys held on this node.
    Keys,
    /// Hubs: found one, pick the default one, show one.
    Hub {
        #[command(subcommand)]
        command: HubCommand,
    },
    /// List the hubs this node belongs to.
    Hubs,
    /// Change the membership roll (stewards).
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Show the membership roll.
    Members,
    /// Assemblies: create one, join or leave one.
    Assembly {
        #[command(subcommand)]
        command: AssemblyCommand,
    },
    /// List the hub's assemblies (the automatic societies first).
    Assemblies,
    /// Polls: create, open, close a station, close, results, verify.
    Poll {
        #[command(subcommand)]
        command: PollCommand,
    },
    /// List the hub's polls.
    Polls,
    /// Proposals: create, edit, comment, take a stance, amend, decide, show, export.
    Proposal {
        #[command(subcommand)]
        command: ProposalCommand,
    },
    /// List the hub's proposals.
    Proposals,
    /// Bundles: a hub's signed ops in a file, carried between nodes that never meet.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// What each side brought when this node took in ops from elsewhere (bundles), newest last.
    Merges,
    /// Run the node: listen, dial peers, sync continuously until stopped (Ctrl-C, SIGTERM).
    Serve {
        /// Address to listen on (repeatable): TCP /ip4/0.0.0.0/tcp/4242, QUIC
        /// /ip4/0.0.0.0/udp/4242/quic-v1, or through a relay /ip4/…/tcp/PORT/p2p/RELAY/p2p-circuit.
        /// Default: both of those, on port 4242 so that tickets and remembered peers stay good
        /// across restarts, or on free ports if 4242 is taken (another node on this machine).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<String>,
        /// A peer to dial and keep connected (repeatable; redialed with backoff when lost): this
        /// is also how bootstrap addresses are given, e.g. /ip4/192.168.1.20/tcp/4242/p2p/12D3….
        #[arg(long, value_name = "MULTIADDR")]
        peer: Vec<String>,
        /// No mDNS discovery on the LAN (tests and CI must use this).
        #[arg(long, env = "MOOT_NO_MDNS")]
        no_mdns: bool,
        /// Also relay for other nodes (circuit relay v2), e.g. an always-on branch node that
        /// nodes behind NAT listen through.
        #[arg(long)]
        relay: bool,
        /// An address this node is reachable at from outside (repeatable), e.g. a public
        /// address forwarded to it; announced to peers.
        #[arg(long, value_name = "MULTIADDR")]
        external: Vec<String>,
        /// Where the web UI and HTTP API listen (default 127.0.0.1:7878, or a free port if
        /// that is taken). Another address than loopback, e.g. 0.0.0.0:7878, opens it to the
        /// LAN: every write then needs a signed-in member with a passphrase.
        #[arg(long, value_name = "IP:PORT", conflicts_with = "no_http")]
        http: Option<String>,
        /// No web UI.
        #[arg(long)]
        no_http: bool,
        /// A host name the web UI answers to on the LAN (repeatable), besides IP addresses,
        /// localhost and NAME.local.
        #[arg(long, value_name = "NAME")]
        http_host: Vec<String>,
    },
    /// The newest ops this node holds of the hub, newest first: who did what (by kind).
    Activity {
        /// How many (at most 500).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The running node's connected peers (needs `moot serve` running on this data directory).
    Peers,
    /// Sync once with peers: connect, take in what they have, report, exit.
    Sync {
        /// A peer to dial (repeatable).
        #[arg(long, value_name = "MULTIADDR", required = true)]
        peer: Vec<String>,
        /// Give up after this many seconds (at most a year).
        #[arg(long, default_value_t = 30, value_parser = timeout_secs())]
        timeout: u64,
    },
    /// The mutual-aid board: offers and requests, pledges, matches, passing gifts on.
    Aid {
        #[command(subcommand)]
        command: AidCommand,
    },
    /// Run the offline branch meeting on this machine, narrated: four nodes (a hall and three
    /// branch laptops) on 127.0.0.1, mDNS off, voting apart and merging by network and bundle.
    Demo {
        /// Keep the nodes' data directories here (new or empty) instead of a temporary
        /// directory removed at the end.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Cast (or re-cast) your ballot: a score from 0 to 5 for each option (options not named
    /// score 0). The latest revision counts until the poll closes.
    Vote {
        /// The poll's id (from `moot polls`).
        poll_id: String,
        /// OPTION=SCORE, once per option.
        #[arg(long = "score", value_name = "OPTION=N")]
        scores: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AssemblyKindArg {
    WorkingGroup,
    Committee,
    Society,
}

#[derive(Debug, Subcommand)]
pub enum AssemblyCommand {
    /// Create an assembly (members-only unless --public). Working groups: any member;
    /// committees and societies: a steward or a convener. You become its convener.
    Create {
        /// Its name.
        name: String,
        /// What it is.
        #[arg(long, value_enum)]
        kind: AssemblyKindArg,
        /// Guests may read it (and join it, if a working group; they never vote).
        #[arg(long)]
        public: bool,
    },
    /// Join a working group or society.
    Join {
        /// The assembly's id (from `moot assemblies`).
        assembly_id: String,
    },
    /// Leave a working group or society.
    Leave {
        /// The assembly's id.
        assembly_id: String,
    },
    /// Seat a member on a committee (a convener of the committee), or unseat them.
    Seat {
        /// The committee's id.
        assembly_id: String,
        /// The member's id.
        member_id: String,
        /// Unseat them instead.
        #[arg(long)]
        remove: bool,
    },
    /// Appoint a convener of an assembly (a steward or one of its conveners), or dismiss one.
    Convener {
        /// The assembly's id.
        assembly_id: String,
        /// The member's id.
        member_id: String,
        /// Dismiss them instead.
        #[arg(long)]
        dismiss: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PollCommand {
    /// Create a poll in an assembly (a convener).
    Create {
        /// The assembly: its id, or `activism`, `policy`, `constituency:NAME`.
        #[arg(long, value_name = "ASSEMBLY_ID")]
        assembly: String,
        /// The question.
        #[arg(long)]
        question: String,
        /// An option (two or more, in ballot order).
        #[arg(long = "option", value_name = "OPTION")]
        options: Vec<String>,
        /// Seats to fill: more than 1 counts Bloc STAR.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        seats: u16,
        /// A returning officer (may close the poll); default: you.
        #[arg(long = "officer", value_name = "MEMBER_ID")]
        officers: Vec<String>,
        /// A station officer (may close a polling station at a branch meeting).
        #[arg(long = "station", value_name = "MEMBER_ID")]
        stations: Vec<String>,
        /// Ballots needed for the result to stand.
        #[arg(long)]
        quorum: Option<u32>,
        /// When the poll is expected to open, UTC: YYYY-MM-DDTHH:MM[:SS]Z. Shown to voters,
        /// never enforced (a convener's signed open opens it).
        #[arg(long, value_name = "UTC")]
        opens_at: Option<String>,
        /// When the poll is expected to close, UTC. Shown, never enforced (only a returning
        /// officer's signed close settles which ballots count).
        #[arg(long, value_name = "UTC")]
        closes_at: Option<String>,
    },
    /// Open a poll (a convener): fixes the electorate — the assembly's members now — and the
    /// tiebreak seed (the open's id).
    Open {
        /// The poll's id.
        poll_id: String,
    },
    /// Close your polling station (a station officer, at a branch meeting): the ballots held
    /// now are this station's.
    CloseStation {
        /// The poll's id.
        poll_id: String,
    },
    /// Close the poll (a returning officer): exactly the ballots held now count.
    Close {
        /// The poll's id.
        poll_id: String,
    },
    /// Show a poll's results (provisional until it is closed).
    Results {
        /// The poll's id.
        poll_id: String,
    },
    /// Recompute a poll's results from the signed ops alone and compare (exit 1 if they
    /// differ).
    Verify {
        /// The poll's id.
        poll_id: String,
        /// Recompute from this bundle alone (no data directory needed): anyone handed the file
        /// can check the count.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add another member key held on this node (protected by --passphrase-file when given).
    New {
        /// The member's name.
        #[arg(long)]
        name: String,
    },
    /// Protect a key stored without a passphrase: the node's own, or the one given with --as.
    /// The new passphrase is read from --passphrase-file.
    Protect,
    /// Give a member key held here (the node's own, or --as's) a new device key: after moot
    /// refused to write because this data directory was copied or restored from a backup.
    NewDevice,
}

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Found a hub; you become its first steward.
    Create {
        /// The hub's name.
        name: String,
    },
    /// Make a hub this node belongs to the default hub.
    Use {
        /// The hub id (64 hex digits, from `moot hubs`).
        hub_id: String,
    },
    /// Show a hub: name, id, founder, member and steward counts, access.
    Show,
    /// Who may receive the hub from its nodes (stewards): public (guests and unknown peers get
    /// its public lane; the default) or members-only (unknown peers get nothing at all).
    Access {
        #[arg(value_enum)]
        access: AccessArg,
    },
    /// A ticket for the hub: what another node needs to join it (`moot serve` prints one with
    /// its addresses).
    Ticket {
        /// An address this node is reachable at while serving (repeatable), with /p2p/NODE_ID.
        #[arg(long, value_name = "MULTIADDR")]
        addr: Vec<String>,
    },
    /// Join a hub with a ticket: record it, then sync with the node the ticket names.
    Join {
        /// The ticket (from `moot hub ticket` or `moot serve`).
        ticket: String,
        /// Give up the first sync after this many seconds (at most a year).
        #[arg(long, default_value_t = 30, value_parser = timeout_secs())]
        timeout: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessArg {
    Public,
    MembersOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Member,
    Guest,
    Steward,
    Convener,
    Coordinator,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Admit a member or guest.
    Add {
        /// Their member id (64 hex digits, from their `moot id`).
        member_id: String,
        /// Their name.
        #[arg(long)]
        name: String,
        /// Their constituency.
        #[arg(long)]
        constituency: Option<String>,
        /// Standing and role.
        #[arg(long, value_enum, default_value_t = RoleArg::Member)]
        role: RoleArg,
    },
    /// Change a member's name, standing and role, or constituency. --role sets them as
    /// `member add --role` does (e.g. `--role member` takes away steward and convener).
    Update {
        /// Their member id.
        member_id: String,
        /// Their new name.
        #[arg(long)]
        name: Option<String>,
        /// Their new constituency ("" clears it).
        #[arg(long)]
        constituency: Option<String>,
        /// Their new standing and role.
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
    },
    /// Remove a member or guest (the hub's last steward cannot be removed).
    Remove {
        /// Their member id.
        member_id: String,
    },
    /// Revoke a device (lost, stolen, or left on a copied data directory): its member or a
    /// steward. What it wrote up to what this node holds stands; later ops that do not follow
    /// the revocation count for nothing.
    RevokeDevice {
        /// The device key (64 hex digits, as `moot key new-device`, `moot peers` or a refusal
        /// name it).
        device: String,
    },
}

/// Arguments of `moot tally`.
#[derive(Debug, Args)]
#[command(after_help = "\
BALLOT FILE:
  A header row of option names, then one row per ballot of whole-number scores 0-5 in header
  order. A blank score counts as 0. star.vote exports (leading voterID,voteTime,pollID columns)
  and BetterVoting exports (leading ballot_id,precinct columns) are recognised from the header;
  a BetterVoting export holding several races (Race!!Option columns) is counted one race at a
  time, chosen with --race. Option names are trimmed and NFC-normalised; names that differ only
  in case, Unicode form or surrounding spaces are refused as duplicates. At most 1000 options
  (a count keeps a table of every pair of options). The file must be UTF-8. Any other value is
  an error naming its line, and the exit code is 2.

TIES:
  The current official STAR tie-breaker protocol. A tie it cannot break goes to the lot: every
  option's lot number is SHA-256(\"moot-star/lot/v1\\0\" || seed || name) and the smallest wins.
  Without --seed, the seed is SHA-256 of the option names and their score histograms (see
  docs/STAR-RULES.md and the moot-star crate docs), so the same ballots always give the same draw.

EXIT CODES:
  0 counted; 1 failed (for example the file could not be read); 2 bad usage or bad input.")]
pub struct TallyArgs {
    /// Ballot CSV file, or - for standard input.
    #[arg(value_name = "FILE.csv|-")]
    pub file: PathBuf,
    /// Seats to fill: more than 1 counts Bloc STAR.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub seats: u32,
    /// Lot seed: 64 hex digits (32 bytes). Default: derived from the ballots.
    #[arg(long, value_name = "HEX64")]
    pub seed: Option<String>,
    /// For a BetterVoting export holding several races: the race to count.
    #[arg(long, value_name = "NAME")]
    pub race: Option<String>,
}

/// The command-line grammar as clap builds it, with the node's global flags (every global flag
/// but `--json`) hidden from `moot tally --help`: a tally needs no node, so `--data`, `--as` and
/// the like do nothing there and would only mislead. Hidden copies are added to `tally` before
/// clap propagates the global flags, so clap keeps them (still accepted, and ignored) instead
/// of adding visible ones. Flags added to [`Global`] later are covered without a change here.
pub fn command() -> clap::Command {
    let command = <Cli as clap::CommandFactory>::command();
    let node_flags: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set() && arg.get_id() != "json")
        .map(|arg| arg.clone().hide(true))
        .collect();
    command.mut_subcommand("tally", |tally| tally.args(node_flags))
}

#[derive(Debug, Subcommand)]
pub enum ProposalCommand {
    /// Create a proposal in an assembly: prints its id.
    Create {
        /// The assembly (an id from `moot assemblies`, or activism, policy, constituency:NAME).
        #[arg(long)]
        assembly: String,
        /// Its title.
        #[arg(long)]
        title: String,
        /// A file holding the first draft (UTF-8 text).
        #[arg(long, value_name = "FILE")]
        body_file: Option<PathBuf>,
        /// The first draft, given inline.
        #[arg(long, conflicts_with = "body_file")]
        body: Option<String>,
    },
    /// Edit the text: replace it with a file's (a minimal diff, so concurrent edits elsewhere
    /// survive), or insert and delete at a position (UTF-16 code units, as JS counts).
    Edit {
        /// The proposal's id.
        proposal_id: String,
        /// The new text, from a file.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["at", "insert", "delete"])]
        body_file: Option<PathBuf>,
        /// Position of the edit.
        #[arg(long)]
        at: Option<usize>,
        /// Units to delete at the position.
        #[arg(long, default_value_t = 0)]
        delete: usize,
        /// Text to insert at the position.
        #[arg(long, default_value = "")]
        insert: String,
        /// The text's version the position counts in: the `heads` `proposal show` gave
        /// (comma-separated), so that an edit made while others edited lands where it was meant.
        #[arg(long, value_name = "HEADS", requires = "at", value_delimiter = ',')]
        base: Vec<String>,
    },
    /// Comment on a proposal, or reply to a comment.
    Comment {
        /// The proposal's id.
        proposal_id: String,
        /// The comment.
        #[arg(long)]
        text: String,
        /// The comment answered.
        #[arg(long, value_name = "COMMENT_ID")]
        reply_to: Option<String>,
    },
    /// Take (or change) your stance: agree, concerns, object or block.
    Stance {
        /// The proposal's id.
        proposal_id: String,
        /// agree, concerns, object or block.
        stance: StanceArg,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose an amendment (`--replace OLD --with NEW`, OLD occurring once in the text), or,
    /// as the proposer or a convener, accept or reject one.
    Amend {
        /// The proposal's id (to propose), or the amendment's id (with --accept / --reject).
        id: String,
        /// Text to replace.
        #[arg(long, requires = "with", conflicts_with_all = ["accept", "reject"])]
        replace: Option<String>,
        /// Its replacement.
        #[arg(long)]
        with: Option<String>,
        /// Accept the amendment (applied to the text at once).
        #[arg(long, conflicts_with = "reject")]
        accept: bool,
        /// Reject the amendment.
        #[arg(long)]
        reject: bool,
    },
    /// Decide the outcome (the proposer or a convener): adopt (by consensus: refused while an
    /// objection or block stands), vote (opens a poll: the proposal, each open amendment, or
    /// reject), or withdraw.
    Decide {
        /// The proposal's id.
        proposal_id: String,
        /// adopt, vote or withdraw.
        outcome: DecideArg,
    },
    /// Show a proposal: its text, comments, stances, amendments and outcome.
    Show {
        /// The proposal's id.
        proposal_id: String,
    },
    /// Write the proposal's document in automerge's saved format (JS `Automerge.load` opens it).
    Export {
        /// The proposal's id.
        proposal_id: String,
        /// Where to write it.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StanceArg {
    Agree,
    Concerns,
    Object,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecideArg {
    Adopt,
    Vote,
    Withdraw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AidKindArg {
    Offer,
    Request,
}

/// What an offer or request says.
#[derive(Debug, Args)]
pub struct ItemArgs {
    /// Short title.
    #[arg(long)]
    pub title: String,
    /// Category (matched case- and accent-insensitively).
    #[arg(long)]
    pub category: String,
    /// Longer description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Area (a postcode district, a constituency…).
    #[arg(long)]
    pub area: Option<String>,
    /// Advisory start, UTC (`YYYY-MM-DD[THH:MM[:SS]][Z]`).
    #[arg(long)]
    pub from: Option<String>,
    /// Advisory end, UTC.
    #[arg(long)]
    pub until: Option<String>,
    /// How many, where it makes sense.
    #[arg(long)]
    pub quantity: Option<u32>,
    /// Guests may read it (default: members only).
    #[arg(long)]
    pub public: bool,
}

#[derive(Debug, Subcommand)]
pub enum AidCommand {
    /// Post an offer: prints its id.
    Offer(ItemArgs),
    /// Post a request: prints its id.
    Request(ItemArgs),
    /// The board, filtered.
    List {
        /// Offers or requests only.
        #[arg(long)]
        kind: Option<AidKindArg>,
        /// This category.
        #[arg(long)]
        category: Option<String>,
        /// This area.
        #[arg(long)]
        area: Option<String>,
        /// open, pledged, fulfilled, withdrawn or expired.
        #[arg(long)]
        status: Option<String>,
    },
    /// One offer or request, with its pledges (contacts shown to the member they were sealed to).
    Show {
        /// The item's id.
        item_id: String,
    },
    /// Suggested counterparts: requests an offer could meet, offers that could meet a request.
    Match {
        /// The item's id.
        item_id: String,
        /// At most this many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Pledge to meet an item, with your contact sealed to its author.
    Pledge {
        /// The item's id.
        item_id: String,
        /// A note to the author (readable by all who can read the item).
        #[arg(long, default_value = "")]
        note: String,
        /// Your contact detail (only the item's author can read it).
        #[arg(long, default_value = "")]
        contact: String,
        /// How many.
        #[arg(long)]
        quantity: Option<u32>,
    },
    /// Answer a pledge to your item with your contact, sealed to the pledger.
    Reply {
        /// The pledge's id.
        pledge_id: String,
        /// Your contact detail (only the pledger can read it).
        #[arg(long)]
        contact: String,
    },
    /// Mark your item fulfilled (by the only pledge standing, or `--pledge`).
    Fulfil {
        /// The item's id.
        item_id: String,
        /// The pledge that met it.
        #[arg(long)]
        pledge: Option<String>,
    },
    /// Withdraw your item (or, given a pledge's id, your pledge).
    Withdraw {
        /// The item's or the pledge's id.
        id: String,
    },
    /// Mark your item expired.
    Expire {
        /// The item's id.
        item_id: String,
    },
    /// Pass a fulfilled gift on (its recipient): posts a new offer naming it.
    Forward {
        /// The fulfilled item's id.
        item_id: String,
        #[command(flatten)]
        item: ItemArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LaneArg {
    Public,
    Members,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write the hub's signed ops to FILE (both lanes; `--lane public` for the public lane
    /// only, e.g. for guests).
    Export {
        /// Where to write it.
        file: PathBuf,
        /// public: the public lane only; members (the default): everything.
        #[arg(long)]
        lane: Option<LaneArg>,
    },
    /// Take in a bundle: every op validated as from a peer; all or nothing.
    Import {
        /// The bundle.
        file: PathBuf,
    },
}

/// Seconds of a `--timeout`: 0 (taken as 1) to a year.
fn timeout_secs() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=365 * 24 * 3600)
}
