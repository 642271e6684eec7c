//! The listing's query: `GET /v1/entities` with `q`, `alarm` or `cursor`
//! (see [`entity_listing`](super::entity_listing)). Pure: the parameters as
//! received, what matches, the order and the cursor.
//!
//! The order is the one work needs attention in: permits active, suspended,
//! approved, submitted, draft, completed, closed, cancelled (then isolation
//! statuses, then the rest); within a status the most recently changed first;
//! then by id. The cursor is that sort key of the last entity of a page,
//! opaque to clients: the next page holds the entities after it.

use std::cmp::Reverse;

use crate::model::{EntityId, EntityType, IsolationStatus, PermitStatus};
use crate::store::Summary;

/// Page size of the listing when `limit` is not given.
pub(super) const DEFAULT_PAGE: usize = 50;
/// Largest page of the listing.
pub(super) const MAX_PAGE: usize = 1000;
/// Longest search text accepted, in characters.
pub(super) const MAX_QUERY_CHARS: usize = 200;

/// Statuses in the order the listing shows them.
const ORDER: [&str; 12] = [
    "active",
    "suspended",
    "approved",
    "submitted",
    "draft",
    "completed",
    "closed",
    "cancelled",
    "assigned",
    "isolated",
    "verified",
    "deisolated",
];

/// The query parameters as the route receives them.
#[derive(Debug, Default)]
pub(super) struct ListingParams {
    /// `type=` (`permit`, `isolation_point`, `closeout`); empty is none.
    pub(super) ty: Option<EntityType>,
    /// `status=`; empty is none.
    pub(super) status: Option<String>,
    /// `limit=`.
    pub(super) limit: Option<usize>,
    /// `q=`: words that must all appear.
    pub(super) q: Option<String>,
    /// `alarm=true|false`; empty is none.
    pub(super) alarm: Option<String>,
    /// `cursor=`: the `next_cursor` of the previous page; empty is the first page.
    pub(super) cursor: Option<String>,
}

/// A parsed listing query.
#[derive(Debug, PartialEq)]
pub(super) struct ListingQuery {
    /// Only this type.
    pub(super) ty: Option<EntityType>,
    /// Only this status.
    pub(super) status: Option<String>,
    /// Only entities in alarm (`true`) or not in alarm (`false`).
    pub(super) alarm: Option<bool>,
    /// Lower-case words that must all appear in the searched text (or one
    /// word that starts the id).
    pub(super) terms: Vec<String>,
    /// Page size.
    pub(super) limit: usize,
    /// The page starts after this key.
    pub(super) after: Option<SortKey>,
}

impl ListingQuery {
    /// Parse the parameters; `Err` says what is wrong, for a 400.
    pub(super) fn parse(p: ListingParams) -> Result<ListingQuery, String> {
        let status = p.status.filter(|s| !s.is_empty());
        if let Some(st) = &status {
            if st.parse::<PermitStatus>().is_err() && st.parse::<IsolationStatus>().is_err() {
                let valid: Vec<&str> = ORDER.to_vec();
                return Err(format!(
                    "unknown status {:?} (valid: {})",
                    st.chars().take(64).collect::<String>(),
                    valid.join(", ")
                ));
            }
        }
        let alarm = match p.alarm.as_deref() {
            None | Some("") => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(other) => {
                let quoted: String = other.chars().take(64).collect();
                return Err(format!("alarm must be true or false, not {quoted:?}"));
            }
        };
        let limit = match p.limit {
            None => DEFAULT_PAGE,
            Some(0) => return Err("limit must be at least 1".into()),
            Some(n) => n.min(MAX_PAGE),
        };
        let q = p.q.unwrap_or_default();
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("q is longer than {MAX_QUERY_CHARS} characters"));
        }
        let terms = q.split_whitespace().map(str::to_lowercase).collect();
        let after = match p.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(SortKey::parse(c).ok_or_else(|| {
                let quoted: String = c.chars().take(64).collect();
                format!("malformed cursor {quoted:?} (pass back a next_cursor unchanged)")
            })?),
        };
        Ok(ListingQuery {
            ty: p.ty,
            status,
            alarm,
            terms,
            limit,
            after,
        })
    }

    /// Whether `summary` passes the `type` filter.
    pub(super) fn type_matches(&self, summary: &Summary) -> bool {
        self.ty.is_none_or(|t| summary.entity_type == t)
    }

    /// Whether the search matches an entity whose searched text (lower case)
    /// is `text`: every word appears in it, or a single word starts the id.
    pub(super) fn text_matches(&self, id: EntityId, text: &str) -> bool {
        if let [only] = self.terms.as_slice() {
            if id.to_string().starts_with(only.as_str()) {
                return true;
            }
        }
        self.terms.iter().all(|t| text.contains(t.as_str()))
    }

    /// Whether an entity with `status`, in alarm or not, passes the `status`
    /// and `alarm` filters.
    pub(super) fn filters_match(&self, status: Option<&str>, in_alarm: bool) -> bool {
        self.status.as_deref().is_none_or(|s| status == Some(s))
            && self.alarm.is_none_or(|a| a == in_alarm)
    }
}

/// Where an entity sits in the listing's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SortKey {
    rank: u8,
    newest: Reverse<u64>,
    id: EntityId,
}

impl SortKey {
    /// The key of `summary`.
    pub(super) fn of(summary: &Summary) -> SortKey {
        SortKey {
            rank: status_rank(summary.status.as_deref()),
            newest: Reverse(summary.feed_seq),
            id: summary.id,
        }
    }

    /// The key as a cursor: `RANK.FEED_SEQ.ID`.
    pub(super) fn cursor(&self) -> String {
        format!("{}.{}.{}", self.rank, self.newest.0, self.id)
    }

    /// A cursor back into a key.
    fn parse(s: &str) -> Option<SortKey> {
        let mut parts = s.splitn(3, '.');
        let rank = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        Some(SortKey {
            rank,
            newest: Reverse(seq),
            id,
        })
    }
}

/// The position of a status in the listing's order (unknown ones last).
pub(super) fn status_rank(status: Option<&str>) -> u8 {
    status
        .and_then(|s| ORDER.iter().position(|o| *o == s))
        .map_or(u8::MAX, |i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: u8, status: &str, feed_seq: u64) -> Summary {
        Summary {
            id: EntityId::from_bytes([n; 16]),
            entity_type: EntityType::Permit,
            status: Some(status.into()),
            title: Some(format!("permit {n}")),
            permit_id: None,
            deleted: false,
            completed: false,
            conflicts: 0,
            rejected: 0,
            changes: 1,
            feed_seq,
            heads: vec![],
        }
    }

    fn parse(p: ListingParams) -> Result<ListingQuery, String> {
        ListingQuery::parse(p)
    }

    #[test]
    fn active_work_comes_first_then_the_latest_change() {
        let mut list = [
            summary(1, "draft", 5),
            summary(2, "active", 1),
            summary(3, "closed", 9),
            summary(4, "active", 7),
            summary(5, "suspended", 2),
        ];
        list.sort_by_key(SortKey::of);
        let order: Vec<u8> = list.iter().map(|s| s.id.as_bytes()[0]).collect();
        assert_eq!(order, [4, 2, 5, 1, 3]);
    }

    #[test]
    fn a_cursor_round_trips_and_a_bad_one_is_refused() {
        let key = SortKey::of(&summary(7, "approved", 42));
        let cursor = key.cursor();
        assert!(cursor.starts_with("2.42."), "{cursor}");
        let q = parse(ListingParams {
            cursor: Some(cursor),
            ..Default::default()
        })
        .expect("parses");
        assert_eq!(q.after, Some(key));
        for bad in [
            "x",
            "1.2",
            "1.2.not-a-uuid",
            "300.1.00000000-0000-0000-0000-000000000000",
        ] {
            let err = parse(ListingParams {
                cursor: Some(bad.into()),
                ..Default::default()
            })
            .expect_err(bad);
            assert!(err.contains("malformed cursor"), "{err}");
        }
    }

    #[test]
    fn parameters_are_checked() {
        let q = parse(ListingParams::default()).expect("defaults");
        assert_eq!(
            (q.limit, q.alarm, q.after.is_none()),
            (DEFAULT_PAGE, None, true)
        );
        let q = parse(ListingParams {
            limit: Some(5000),
            alarm: Some("true".into()),
            status: Some("active".into()),
            q: Some("  Pump   HOUSE ".into()),
            ..Default::default()
        })
        .expect("parses");
        assert_eq!(q.limit, MAX_PAGE);
        assert_eq!(q.alarm, Some(true));
        assert_eq!(q.terms, ["pump", "house"]);
        let err = |p: ListingParams| parse(p).expect_err("refused");
        assert!(err(ListingParams {
            limit: Some(0),
            ..Default::default()
        })
        .contains("limit"));
        assert!(err(ListingParams {
            alarm: Some("yes".into()),
            ..Default::default()
        })
        .contains("true or false"));
        let e = err(ListingParams {
            status: Some("activ".into()),
            ..Default::default()
        });
        assert!(e.contains("valid: active, suspended"), "{e}");
        assert!(err(ListingParams {
            q: Some("x".repeat(MAX_QUERY_CHARS + 1)),
            ..Default::default()
        })
        .contains("longer"));
    }

    #[test]
    fn every_word_must_appear_or_one_word_starts_the_id() {
        let q = parse(ListingParams {
            q: Some("pump seal".into()),
            ..Default::default()
        })
        .expect("parses");
        let id = EntityId::from_bytes([0xab; 16]);
        assert!(q.text_matches(id, "replace seal\npump house 2"));
        assert!(!q.text_matches(id, "replace seal\ntank farm"));
        let by_id = parse(ListingParams {
            q: Some("ABABAB".into()),
            ..Default::default()
        })
        .expect("parses");
        assert!(by_id.text_matches(id, "nothing alike"));
        assert!(q.filters_match(Some("draft"), false));
        let active_alarms = parse(ListingParams {
            status: Some("active".into()),
            alarm: Some("true".into()),
            ..Default::default()
        })
        .expect("parses");
        assert!(active_alarms.filters_match(Some("active"), true));
        assert!(!active_alarms.filters_match(Some("active"), false));
        assert!(!active_alarms.filters_match(Some("draft"), true));
    }
}
