//! The lot: the last-resort tiebreak, deterministic from a 32-byte seed.
//!
//! # The rule
//! Every option gets a *lot number*: `SHA-256("moot-star/lot/v1" || 0x00 || seed || name)`,
//! where `name` is the option's UTF-8 name. Options are ranked by lot number, smallest first
//! (bytewise), and whenever the official protocol says "random", the tied options with the
//! smallest lot numbers win. This is the "published lot numbers" approach: once the seed is
//! fixed the whole order is fixed, anyone can recompute it with a stock SHA-256 tool, and it
//! depends on the option's name rather than its column, so listing the options in another
//! order never changes a draw.
//!
//! In a hub the seed is fixed when a poll opens, before any ballot exists (the hash of the
//! signed open record), so no voter can steer a draw. For a standalone `moot tally`,
//! [`default_seed`] derives one from the counts: documented, reproducible, independent of the
//! order of ballots and of options.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::Counts;

const LOT_DOMAIN: &[u8] = b"moot-star/lot/v1\0";
const DEFAULT_SEED_DOMAIN: &[u8] = b"moot-star/default-seed/v1\0";

/// A 32-byte seed for the lot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seed(pub [u8; 32]);

/// Why a seed string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// Not 64 hexadecimal digits.
    #[error("a seed is 64 hexadecimal digits (32 bytes); got {length} characters")]
    Length {
        /// Characters given.
        length: usize,
    },
    /// A character that is not a hexadecimal digit.
    #[error("a seed is 64 hexadecimal digits: {0}")]
    Hex(String),
}

impl FromStr for Seed {
    type Err = SeedError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(SeedError::Length {
                length: text.chars().count(),
            });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| SeedError::Hex(e.to_string()))?;
        Ok(Seed(bytes))
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({self})")
    }
}

/// An option's lot number under a seed; smaller wins a draw.
pub fn lot_number(seed: &Seed, name: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(LOT_DOMAIN);
    hasher.update(seed.0);
    hasher.update(name.as_bytes());
    hasher.finalize().into()
}

/// Option indices ordered by lot number, the draw's winner first. Equal lot numbers (which
/// would need equal names, and names are unique) fall back to index order.
pub fn lot_order(seed: &Seed, names: &[String]) -> Vec<usize> {
    let mut keyed: Vec<([u8; 32], usize)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (lot_number(seed, name), i))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The seed `moot tally` uses when none is given:
/// `SHA-256("moot-star/default-seed/v1" || 0x00 || for each option, sorted by name:
/// name || 0x00 || its six histogram counts as u64 little-endian)`.
///
/// It depends only on the option names and their score histograms, so reordering ballots or
/// options leaves it unchanged, and a merged [`crate::Summary`] gives the same seed as the
/// ballots it came from.
pub fn default_seed<C: Counts + ?Sized>(counts: &C) -> Seed {
    let names = counts.names();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]));
    let mut hasher = Sha256::new();
    hasher.update(DEFAULT_SEED_DOMAIN);
    for option in order {
        hasher.update(names[option].as_bytes());
        hasher.update([0u8]);
        for count in counts.histogram(option) {
            hasher.update(count.to_le_bytes());
        }
    }
    Seed(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_round_trips_through_hex() {
        let text = "00ff".repeat(16);
        let seed: Seed = text.parse().unwrap();
        assert_eq!(seed.0[0], 0x00);
        assert_eq!(seed.0[1], 0xff);
        assert_eq!(seed.to_string(), text);
    }

    #[test]
    fn seed_refuses_wrong_length_and_non_hex() {
        assert_eq!("abcd".parse::<Seed>(), Err(SeedError::Length { length: 4 }));
        assert!(matches!(
            "zz".repeat(32).parse::<Seed>(),
            Err(SeedError::Hex(_))
        ));
    }

    #[test]
    fn lot_number_is_sha256_of_the_documented_bytes() {
        // Anyone can check a draw with a stock tool:
        // printf 'moot-star/lot/v1\0' > m; head -c 32 /dev/zero >> m; printf 'Ada' >> m; sha256sum m
        let number = lot_number(&Seed([0; 32]), "Ada");
        assert_eq!(
            hex::encode(number),
            "04b9031da3510b867e477768b886e102bcafe1835183516473fa02507d7c05f3"
        );
    }

    #[test]
    fn lot_order_depends_on_names_not_positions() {
        let seed = Seed([7; 32]);
        let names: Vec<String> = ["Ada", "Ben", "Cara", "Dev"].map(String::from).to_vec();
        let reversed: Vec<String> = names.iter().rev().cloned().collect();
        let order: Vec<&str> = lot_order(&seed, &names)
            .into_iter()
            .map(|i| names[i].as_str())
            .collect();
        let order_reversed: Vec<&str> = lot_order(&seed, &reversed)
            .into_iter()
            .map(|i| reversed[i].as_str())
            .collect();
        assert_eq!(order, order_reversed);
        let other: Vec<&str> = lot_order(&Seed([8; 32]), &names)
            .into_iter()
            .map(|i| names[i].as_str())
            .collect();
        assert_eq!(other.len(), 4);
    }
}
