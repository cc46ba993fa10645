//! Who may ask: sessions, CSRF tokens, the `Host` check, sign-in rate limits and the headers
//! every response carries. No IO beyond the clock and the random source.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the API is reachable from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Loopback only: this machine's user, who may also run `moot` in a terminal.
    Local,
    /// Another interface (the hall's Wi-Fi): writes need a signed-in member.
    Lan,
}

/// The session cookie's name.
pub const COOKIE: &str = "moot_session";
/// The header a write carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-moot-csrf";
/// The header the owner's page carries its owner secret in.
pub const OWNER_HEADER: &str = "x-moot-owner";

/// Sessions at most; the least recently used goes first.
const MAX_SESSIONS: usize = 4_096;
/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins per address per minute, and from everyone per minute.
const SIGN_INS_PER_ADDR: u32 = 5;
const SIGN_INS_PER_MINUTE: u32 = 60;
/// Addresses whose attempts are remembered at most.
const MAX_LIMITED: usize = 4_096;

/// A member signed in on a session.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub member_id: String,
    pub name: String,
    /// The key's passphrase, held in memory for this session only (never written anywhere).
    pub passphrase: Option<String>,
    /// Not an active member on the roll (a guest, removed, or not on it): sees what the public
    /// sees. Checked again with every request.
    pub guest: bool,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("member_id", &self.member_id)
            .field("name", &self.name)
            .field("guest", &self.guest)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub signed_in: Option<SignedIn>,
    /// The page was opened with this node's web token (the link `moot serve` prints): it is
    /// the node owner's, and may act as the node's keys on loopback — on requests that also
    /// carry [`Session::owner`] (see [`OWNER_HEADER`]).
    pub trusted: bool,
    /// The secret a trusted session's page keeps in its own storage (separate per port, unlike
    /// cookies, which browsers send to every port of 127.0.0.1) and sends with every request:
    /// the cookie alone, seen by another local web server, is not the owner.
    pub owner: Option<String>,
    pub(crate) last_used: Instant,
}

/// Sessions, rate limits and the rules that depend on the exposure.
pub struct Guard {
    pub exposure: Exposure,
    /// The node's web token (`None`: every loopback session is trusted — for tests of the
    /// routes alone).
    token: Option<String>,
    port: u16,
    hosts: Vec<String>,
    sessions: Mutex<HashMap<String, Session>>,
    limits: Mutex<Limits>,
}

/// The address a client is counted under (sign-in attempts, connections): the address, an
/// IPv4-mapped IPv6 one as the IPv4 address. (Not an IPv6 /64: on the hall's network every
/// device has its addresses in one /64, so counting by /64 would count the whole hall as one.)
pub(crate) fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
    }
}

struct Limits {
    window: Instant,
    all: u32,
    by_addr: HashMap<IpAddr, u32>,
}

/// A sign-in attempt over the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    TooMany,
}

fn token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

impl Guard {
    pub fn new(exposure: Exposure, port: u16, hosts: Vec<String>, token: Option<String>) -> Self {
        Guard {
            exposure,
            token,
            port,
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            sessions: Mutex::new(HashMap::new()),
            limits: Mutex::new(Limits {
                window: Instant::now(),
                all: 0,
                by_addr: HashMap::new(),
            }),
        }
    }

    /// Whether a `Host` header names this node: on loopback only `localhost` and loopback
    /// addresses; on the LAN also any IP address, `NAME.local` and the configured names. The
    /// port must be ours.
    pub fn host_ok(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let (name, port) = split_host(&host);
        if port.is_some_and(|p| p != self.port) {
            return false;
        }
        let ip = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let local = name == "localhost" || ip.is_some_and(|ip| ip.is_loopback());
        match self.exposure {
            Exposure::Local => local,
            Exposure::Lan => {
                local
                    || ip.is_some()
                    || (name.ends_with(".local") && name.len() > ".local".len())
                    || self.hosts.iter().any(|h| h == name)
            }
        }
    }

    /// The session behind a cookie value, touched; `None` if unknown or expired.
    pub fn session(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        let session = sessions.get_mut(id)?;
        if now.duration_since(session.last_used) > IDLE {
            sessions.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// A new session: its id (for the cookie) and itself.
    pub fn new_session(&self) -> Option<(String, Session)> {
        let session = Session {
            csrf: token()?,
            signed_in: None,
            trusted: self.token.is_none(),
            owner: None,
            last_used: Instant::now(),
        };
        self.insert(session)
    }

    /// Stores a session under a new id. When the table is full, sessions unused for
    /// [`IDLE`] go, then the least recently used anonymous one: a flood of new sessions (any
    /// page can make a browser send requests without the cookie) never pushes out the owner's
    /// or a signed-in member's. `None` if only those are left (or no random source).
    fn insert(&self, session: Session) -> Option<(String, Session)> {
        let id = token()?;
        let mut sessions = self.sessions.lock().ok()?;
        if sessions.len() >= MAX_SESSIONS {
            let now = Instant::now();
            sessions.retain(|_, s| now.duration_since(s.last_used) <= IDLE);
        }
        if sessions.len() >= MAX_SESSIONS {
            let anonymous = |s: &Session| s.signed_in.is_none() && !s.trusted;
            let oldest = sessions
                .iter()
                .filter(|(_, s)| anonymous(s))
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())?;
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// Moves a session to a new id (and a new CSRF token): done whenever it gains or loses a
    /// power (the owner's link, a sign-in, a sign-out), so that an id someone planted or saw
    /// before is worth nothing after. Returns the new id and the session.
    pub fn rotate(&self, id: &str) -> Option<(String, Session)> {
        let mut session = self.sessions.lock().ok()?.remove(id)?;
        session.csrf = token()?;
        self.insert(session)
    }

    /// Records a signed-in member's standing as the roll has it now (a member removed or made
    /// a guest since signing in loses members-only access at once); returns the session.
    pub fn set_guest(&self, id: &str, guest: bool) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let session = sessions.get_mut(id)?;
        if let Some(signed_in) = session.signed_in.as_mut() {
            signed_in.guest = guest;
        }
        Some(session.clone())
    }

    /// Signs a session in (or out, with `None`), with a fresh CSRF token either way.
    pub fn set_signed_in(&self, id: &str, signed_in: Option<SignedIn>) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let session = sessions.get_mut(id)?;
        session.signed_in = signed_in;
        session.csrf = token()?;
        Some(session.clone())
    }

    /// Whether `given` is the node's web token (compared in constant time).
    pub fn token_ok(&self, given: &str) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        same_secret(token, given)
    }

    /// Marks a session as opened with the web token, with a fresh CSRF token and a new owner
    /// secret.
    pub fn trust(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let session = sessions.get_mut(id)?;
        session.trusted = true;
        session.owner = Some(token()?);
        session.csrf = token()?;
        Some(session.clone())
    }

    /// Whether a request presents its trusted session's owner secret (constant time). Without
    /// a web token configured (tests of the routes alone) every session is the owner's.
    pub fn owner_ok(&self, session: &Session, presented: Option<&str>) -> bool {
        if self.token.is_none() {
            return true;
        }
        match (&session.owner, presented) {
            (Some(owner), Some(presented)) => same_secret(owner, presented),
            _ => false,
        }
    }

    /// Starts a sign-in attempt from `addr`: `Err` once it (or everyone together) failed too
    /// often this minute. The attempt counts as a failure from now on — so that attempts made
    /// in parallel cannot all pass this check — until [`Guard::sign_in_succeeded`] takes it
    /// back: only failures count, and members signing in one after another on the branch
    /// laptop are never held up.
    ///
    /// Attempts from this machine (loopback) count only against its own limit, not
    /// everyone's: whoever is at the node's own keyboard is not locked out by a flood from the
    /// hall's network.
    pub fn sign_in_begin(&self, addr: IpAddr) -> Result<(), Denied> {
        let addr = address_key(addr);
        let local = addr.is_loopback();
        let mut limits = self.limits.lock().map_err(|_| Denied::TooMany)?;
        let now = Instant::now();
        if now.duration_since(limits.window) >= Duration::from_secs(60) {
            limits.window = now;
            limits.all = 0;
            limits.by_addr.clear();
        }
        if (!local && limits.all >= SIGN_INS_PER_MINUTE)
            || limits.by_addr.get(&addr).copied().unwrap_or(0) >= SIGN_INS_PER_ADDR
            || (!limits.by_addr.contains_key(&addr) && limits.by_addr.len() >= MAX_LIMITED)
        {
            return Err(Denied::TooMany);
        }
        if !local {
            limits.all += 1;
        }
        *limits.by_addr.entry(addr).or_insert(0) += 1;
        Ok(())
    }

    /// A sign-in begun with [`Guard::sign_in_begin`] succeeded: it does not count.
    pub fn sign_in_succeeded(&self, addr: IpAddr) {
        let addr = address_key(addr);
        let local = addr.is_loopback();
        if let Ok(mut limits) = self.limits.lock() {
            if !local {
                limits.all = limits.all.saturating_sub(1);
            }
            if let Some(count) = limits.by_addr.get_mut(&addr) {
                *count = count.saturating_sub(1);
            }
        }
    }

    /// Whether a session acts as the node's own keys when no one signed in: on loopback, a
    /// page opened with the node's web token.
    pub fn acts_as_node(&self, session: &Session) -> bool {
        self.exposure == Exposure::Local && session.trusted
    }

    /// Whether a session may write: a signed-in member who is not a guest, or the node's
    /// owner on loopback.
    pub fn may_write(&self, session: &Session) -> bool {
        match &session.signed_in {
            Some(s) => !s.guest,
            None => self.acts_as_node(session),
        }
    }

    /// Whether a session sees only public spaces.
    pub fn public_only(&self, session: &Session) -> bool {
        match &session.signed_in {
            Some(s) => s.guest,
            None => !self.acts_as_node(session),
        }
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `host[:port]` or `[v6]:port` → name and port.
fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((v6, tail)) => (
                &host[..v6.len() + 2],
                tail.strip_prefix(':').and_then(|p| p.parse().ok()),
            ),
            // Not a host name at all: matches no port of ours.
            None => (host, Some(0)),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => match port.parse::<u16>() {
            Ok(port) => (name, Some(port)),
            // Not a port: a name that cannot be ours (`:` is not allowed in names).
            Err(_) => (host, Some(0)),
        },
        None => (host, None),
    }
}

/// Headers on every response: a strict CSP (our own scripts and styles only, no inline code,
/// no frames, nothing fetched from elsewhere), no sniffing, no referrer, no framing.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(exposure: Exposure) -> Guard {
        Guard::new(exposure, 7070, vec!["hall.example".into()], None)
    }

    #[test]
    fn loopback_accepts_only_local_hosts_on_its_port() {
        let g = guard(Exposure::Local);
        for ok in [
            "127.0.0.1:7070",
            "localhost:7070",
            "[::1]:7070",
            "LOCALHOST:7070",
        ] {
            assert!(g.host_ok(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example:7070",
            "127.0.0.1:8080",
            "192.168.1.20:7070",
            "hall.example:7070",
            "",
            "127.0.0.1:x",
            "[::1",
        ] {
            assert!(!g.host_ok(Some(bad)), "{bad}");
        }
        assert!(!g.host_ok(None));
    }

    #[test]
    fn the_lan_accepts_addresses_local_names_and_configured_hosts() {
        let g = guard(Exposure::Lan);
        for ok in [
            "192.168.1.20:7070",
            "hall.local:7070",
            "hall.example",
            "10.0.0.1",
            "[fe80::1]:7070",
        ] {
            assert!(g.host_ok(Some(ok)), "{ok}");
        }
        for bad in ["evil.example:7070", ".local:7070", "attacker.com"] {
            assert!(!g.host_ok(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn failed_sign_ins_are_limited_per_address() {
        let g = guard(Exposure::Lan);
        let a: IpAddr = "192.168.1.5".parse().unwrap();
        let b: IpAddr = "192.168.1.6".parse().unwrap();
        // Successes are taken back.
        for _ in 0..3 * SIGN_INS_PER_ADDR {
            assert_eq!(g.sign_in_begin(a), Ok(()));
            g.sign_in_succeeded(a);
        }
        // Attempts in flight count: the sixth at once is refused.
        for _ in 0..SIGN_INS_PER_ADDR {
            assert_eq!(g.sign_in_begin(a), Ok(()));
        }
        assert_eq!(g.sign_in_begin(a), Err(Denied::TooMany));
        assert_eq!(g.sign_in_begin(b), Ok(()));
        // Everyone together: at most SIGN_INS_PER_MINUTE a minute.
        for i in 0..SIGN_INS_PER_MINUTE {
            let _ = g.sign_in_begin(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]));
        }
        assert_eq!(
            g.sign_in_begin(IpAddr::from([10, 9, 9, 9])),
            Err(Denied::TooMany)
        );
        // This machine still may, up to its own limit.
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..SIGN_INS_PER_ADDR {
            assert_eq!(g.sign_in_begin(local), Ok(()));
        }
        assert_eq!(g.sign_in_begin(local), Err(Denied::TooMany));
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_the_ipv4_one_and_ipv6_addresses_each_alone() {
        let g = guard(Exposure::Lan);
        for _ in 0..SIGN_INS_PER_ADDR {
            assert_eq!(g.sign_in_begin("192.168.1.9".parse().unwrap()), Ok(()));
        }
        let mapped: IpAddr = "::ffff:192.168.1.9".parse().unwrap();
        assert_eq!(g.sign_in_begin(mapped), Err(Denied::TooMany));
        // Two phones on the hall's network share a /64: each has its own five.
        for i in 0..SIGN_INS_PER_ADDR {
            let addr: IpAddr = format!("2001:db8:1:2::{}", i + 1).parse().unwrap();
            assert_eq!(g.sign_in_begin(addr), Ok(()));
        }
        // Loopback, even mapped, is this machine: not counted in everyone's sixty.
        let mapped_local: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped_local), IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn who_may_write_depends_on_the_exposure() {
        let member = SignedIn {
            member_id: "m".into(),
            name: "Ann".into(),
            passphrase: Some("p".into()),
            guest: false,
        };
        let guest = SignedIn {
            guest: true,
            ..member.clone()
        };
        for (exposure, anonymous, signed, guest_writes) in [
            (Exposure::Local, true, true, false),
            (Exposure::Lan, false, true, false),
        ] {
            let g = guard(exposure);
            let (id, session) = g.new_session().unwrap();
            assert_eq!(g.may_write(&session), anonymous, "{exposure:?}");
            assert_eq!(g.public_only(&session), exposure == Exposure::Lan);
            let before = session.csrf.clone();
            let s = g.set_signed_in(&id, Some(member.clone())).unwrap();
            assert_ne!(s.csrf, before, "signing in changes the CSRF token");
            assert_eq!(g.may_write(&s), signed);
            assert!(!g.public_only(&s));
            let s = g.set_signed_in(&id, Some(guest.clone())).unwrap();
            assert_eq!(g.may_write(&s), guest_writes);
            assert!(g.public_only(&s));
        }
    }

    #[test]
    fn on_loopback_only_a_page_opened_with_the_web_token_acts_as_the_node() {
        let g = Guard::new(Exposure::Local, 7070, vec![], Some("t0k3n".into()));
        let (id, session) = g.new_session().unwrap();
        assert!(!session.trusted);
        assert!(!g.may_write(&session) && g.public_only(&session));
        assert!(!g.token_ok("t0k3") && !g.token_ok("t0k3n!") && !g.token_ok(""));
        assert!(g.token_ok("t0k3n"));
        let trusted = g.trust(&id).unwrap();
        assert_ne!(trusted.csrf, session.csrf);
        assert!(g.may_write(&trusted) && !g.public_only(&trusted));
        // On the LAN the token makes no one the node.
        let lan = Guard::new(Exposure::Lan, 7070, vec![], Some("t0k3n".into()));
        let (id, _) = lan.new_session().unwrap();
        let s = lan.trust(&id).unwrap();
        assert!(!lan.may_write(&s) && lan.public_only(&s));
    }

    #[test]
    fn sessions_are_found_by_id_only() {
        let g = guard(Exposure::Local);
        let (id, _) = g.new_session().unwrap();
        assert!(g.session(&id).is_some());
        assert!(g.session("not-a-session").is_none());
        assert_eq!(id.len(), 64);
    }
}
