//! When an approved email goes out: now, at a time the stylist chose, or at the hour the
//! client usually opens emails (learned from their opens; mid-morning in the business's
//! time zone until there are enough). A scheduled send never falls within the quiet
//! hours: one that would waits for their end. "Now" is the stylist's explicit choice and
//! goes at once.

use crate::validation::FieldError;
use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// What the stylist asked for when approving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "send")]
pub enum SendAt {
    Now,
    /// At this time (or as soon after it as the quiet hours allow).
    At {
        at: DateTime<Utc>,
    },
    /// At the hour the client usually opens emails.
    UsualHour,
}

impl SendAt {
    /// Reads the approval form's or the API's `send_at`: empty or `now`, `usual_hour`, or
    /// an RFC 3339 time (`2026-12-05T10:00:00+01:00`) not in the past.
    pub fn parse(raw: &str, now: DateTime<Utc>) -> Result<Self, FieldError> {
        match raw.trim() {
            "" | "now" => Ok(Self::Now),
            "usual_hour" => Ok(Self::UsualHour),
            text => {
                let at = DateTime::parse_from_rfc3339(text)
                    .map_err(|_| {
                        FieldError::new(
                            "send_at",
                            "Say when to send: now, usual_hour, or a time such as 2026-12-05T10:00:00+01:00.",
                        )
                    })?
                    .with_timezone(&Utc);
                if at < now - Duration::minutes(1) {
                    return Err(FieldError::new("send_at", "That time has passed."));
                }
                if at > now + Duration::days(90) {
                    return Err(FieldError::new(
                        "send_at",
                        "Schedule a send at most 90 days ahead.",
                    ));
                }
                Ok(Self::At { at })
            }
        }
    }
}

/// The business's sending hours: quiet from `quiet_start` to `quiet_end` (local hours,
/// wrapping midnight when start > end; equal: none), and the hour to send at when a
/// client's usual one is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendHours {
    pub quiet_start: u32,
    pub quiet_end: u32,
    pub default_hour: u32,
}

impl Default for SendHours {
    fn default() -> Self {
        Self {
            quiet_start: 21,
            quiet_end: 8,
            default_hour: 10,
        }
    }
}

impl SendHours {
    /// Reads `21-8` (quiet from 21:00 to 08:00) or `none`.
    pub fn parse_quiet(raw: &str) -> Result<(u32, u32), String> {
        let raw = raw.trim();
        if raw == "none" {
            return Ok((0, 0));
        }
        let (start, end) = raw.split_once('-').ok_or_else(|| {
            format!("quiet hours are START-END hours such as 21-8, or none; not {raw:?}")
        })?;
        let hour = |h: &str| {
            h.trim()
                .parse::<u32>()
                .ok()
                .filter(|h| *h < 24)
                .ok_or_else(|| format!("{h:?} is not an hour from 0 to 23"))
        };
        Ok((hour(start)?, hour(end)?))
    }

    fn quiet(&self, hour: u32) -> bool {
        match self.quiet_start.cmp(&self.quiet_end) {
            std::cmp::Ordering::Equal => false,
            std::cmp::Ordering::Less => (self.quiet_start..self.quiet_end).contains(&hour),
            std::cmp::Ordering::Greater => hour >= self.quiet_start || hour < self.quiet_end,
        }
    }
}

/// The first instant at or after `t` whose local hour in `zone` is `hour` (at its start).
fn next_local_hour<Z: TimeZone>(t: DateTime<Utc>, hour: u32, zone: &Z) -> DateTime<Utc> {
    let local = t.with_timezone(zone);
    let mut day = local.date_naive();
    for _ in 0..3 {
        if let Some(start) = day
            .and_hms_opt(hour, 0, 0)
            .and_then(|naive| zone.from_local_datetime(&naive).earliest())
            .map(|at| at.with_timezone(&Utc))
            .filter(|at| *at >= t)
        {
            return start;
        }
        day = day.succ_opt().unwrap_or(day);
    }
    t
}

/// When to send an email approved `now` as `asked`, for a client who usually opens at
/// `usual_hour` (UTC), in the business's `zone` and `hours`. `None`: at once.
pub fn send_time<Z: TimeZone>(
    asked: SendAt,
    now: DateTime<Utc>,
    usual_hour: Option<u32>,
    hours: SendHours,
    zone: &Z,
) -> Option<DateTime<Utc>> {
    let wanted = match asked {
        SendAt::Now => return None,
        SendAt::At { at } => at.max(now),
        SendAt::UsualHour => match usual_hour {
            Some(hour) => next_local_hour(now, hour, &Utc),
            None => next_local_hour(now, hours.default_hour, zone),
        },
    };
    let local_hour = wanted.with_timezone(zone).hour();
    let at = if hours.quiet(local_hour) {
        next_local_hour(wanted, hours.quiet_end, zone)
    } else {
        wanted
    };
    (at > now + Duration::seconds(30)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn now_is_at_once_and_a_scheduled_time_in_the_quiet_hours_waits_for_their_end() {
        let paris = FixedOffset::east_opt(3600).unwrap();
        let hours = SendHours::default();
        assert_eq!(
            send_time(SendAt::Now, at("2026-12-05T13:00:00Z"), None, hours, &paris),
            None
        );
        assert_eq!(
            send_time(SendAt::Now, at("2026-12-05T21:30:00Z"), None, hours, &paris),
            None
        );
        let now = at("2026-12-05T12:00:00Z");
        // 22:30 in Paris: quiet until 08:00 the next morning, Paris time.
        assert_eq!(
            send_time(
                SendAt::At {
                    at: at("2026-12-05T21:30:00Z")
                },
                now,
                None,
                hours,
                &paris
            ),
            Some(at("2026-12-06T07:00:00Z"))
        );
        // 03:00 in Paris: the same morning.
        assert_eq!(
            send_time(
                SendAt::At {
                    at: at("2026-12-06T02:00:00Z")
                },
                now,
                None,
                hours,
                &paris
            ),
            Some(at("2026-12-06T07:00:00Z"))
        );
    }

    #[test]
    fn the_usual_hour_is_the_clients_or_mid_morning_and_a_chosen_time_is_kept() {
        let utc = Utc;
        let hours = SendHours::default();
        let now = at("2026-12-05T12:00:00Z");
        assert_eq!(
            send_time(SendAt::UsualHour, now, Some(18), hours, &utc),
            Some(at("2026-12-05T18:00:00Z"))
        );
        assert_eq!(
            send_time(SendAt::UsualHour, now, Some(9), hours, &utc),
            Some(at("2026-12-06T09:00:00Z"))
        );
        assert_eq!(
            send_time(SendAt::UsualHour, now, None, hours, &utc),
            Some(at("2026-12-06T10:00:00Z"))
        );
        // A usual hour inside the quiet hours waits for their end.
        assert_eq!(
            send_time(SendAt::UsualHour, now, Some(23), hours, &utc),
            Some(at("2026-12-06T08:00:00Z"))
        );
        let chosen = at("2026-12-07T15:00:00Z");
        assert_eq!(
            send_time(SendAt::At { at: chosen }, now, None, hours, &utc),
            Some(chosen)
        );
    }

    #[test]
    fn what_a_stylist_types_is_read_or_refused_by_field() {
        let now = at("2026-12-05T12:00:00Z");
        assert_eq!(SendAt::parse("", now).unwrap(), SendAt::Now);
        assert_eq!(SendAt::parse("usual_hour", now).unwrap(), SendAt::UsualHour);
        assert_eq!(
            SendAt::parse("2026-12-06T10:00:00+01:00", now).unwrap(),
            SendAt::At {
                at: at("2026-12-06T09:00:00Z")
            }
        );
        for bad in ["tomorrow", "2026-12-01T10:00:00Z", "2027-12-01T10:00:00Z"] {
            assert_eq!(
                SendAt::parse(bad, now).unwrap_err().field,
                "send_at",
                "{bad}"
            );
        }
        assert_eq!(SendHours::parse_quiet("21-8").unwrap(), (21, 8));
        assert_eq!(SendHours::parse_quiet("none").unwrap(), (0, 0));
        assert!(SendHours::parse_quiet("25-8").is_err());
    }
}
