//! Everything a stylist knows about a client beyond name and address: consent, style
//! profile, the relationship (Fix history and Freestyle purchases), feedback and how the
//! client engages with email.
//!
//! Raw input ([`ProfileInput`]) becomes a [`Profile`] only through [`Profile::parse`], which
//! reports every bad field by its path (`fixes[2].items_kept`). A `Profile` therefore always
//! holds dates in order, kept items never exceeding sent items, ratings from 1 to 5 and
//! nothing dated after the moment it was parsed.

use crate::validation::{FieldError, ValidationErrors};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in cents (the business trades in one currency, US dollars).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Money(u64);

impl Money {
    /// The largest single amount accepted: a typo guard, far above any real order.
    pub const MAX_CENTS: u64 = 10_000_000;

    pub fn from_cents(cents: u64) -> Self {
        Self(cents)
    }

    pub fn cents(self) -> u64 {
        self.0
    }

    pub fn dollars(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// An amount in dollars as a number (`129.5`) or text (`"129.50"`, `"$129.50"`).
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim().trim_start_matches('$');
        let invalid = || {
            FieldError::new(
                field,
                format!(
                    "Enter an amount in dollars such as 129.50 (got \"{}\").",
                    raw.trim()
                ),
            )
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return Err(invalid());
        }
        if fraction.len() > 2 {
            return Err(FieldError::new(
                field,
                "Amounts have at most two decimal places.",
            ));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let cents = format!("{fraction:0<2}")
            .parse::<u64>()
            .map_err(|_| invalid())?;
        let total = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .filter(|&c| c <= Self::MAX_CENTS)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!("Amounts above ${} are not accepted.", Self::MAX_CENTS / 100),
                )
            })?;
        Ok(Self(total))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Whether the client may be emailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EmailConsent {
    /// The client has not said yes: no marketing email may be drafted.
    NotGiven,
    OptedIn {
        at: DateTime<Utc>,
    },
    /// The client asked to stop; this outranks any earlier opt-in.
    Unsubscribed {
        at: DateTime<Utc>,
    },
}

impl EmailConsent {
    pub fn allows_email(self) -> bool {
        matches!(self, Self::OptedIn { .. })
    }
}

/// A style a client likes, from the fixed list stylists choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Style {
    Classic,
    Casual,
    Bohemian,
    Edgy,
    Minimalist,
    Preppy,
    Romantic,
    Sporty,
    Streetwear,
    Workwear,
}

impl Style {
    pub const ALL: [Self; 10] = [
        Self::Classic,
        Self::Casual,
        Self::Bohemian,
        Self::Edgy,
        Self::Minimalist,
        Self::Preppy,
        Self::Romantic,
        Self::Sporty,
        Self::Streetwear,
        Self::Workwear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Casual => "casual",
            Self::Bohemian => "bohemian",
            Self::Edgy => "edgy",
            Self::Minimalist => "minimalist",
            Self::Preppy => "preppy",
            Self::Romantic => "romantic",
            Self::Sporty => "sporty",
            Self::Streetwear => "streetwear",
            Self::Workwear => "workwear",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim().to_lowercase();
        Self::ALL
            .into_iter()
            .find(|style| style.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                FieldError::new(
                    field,
                    format!(
                        "\"{raw}\" is not a style we offer; choose from {}.",
                        known.join(", ")
                    ),
                )
            })
    }
}

/// What a client is comfortable spending on one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BudgetBand {
    Under50,
    #[default]
    From50To100,
    From100To200,
    Over200,
}

impl BudgetBand {
    pub const ALL: [Self; 4] = [
        Self::Under50,
        Self::From50To100,
        Self::From100To200,
        Self::Over200,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Under50 => "under_50",
            Self::From50To100 => "from_50_to_100",
            Self::From100To200 => "from_100_to_200",
            Self::Over200 => "over_200",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|band| band.as_str() == raw)
            .ok_or_else(|| {
                FieldError::new(
                    "budget",
                    "Budget must be under_50, from_50_to_100, from_100_to_200 or over_200.",
                )
            })
    }
}

/// Sizes as the client gave them (`M`, `32x30`, `8`): short free text, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sizes {
    pub top: Option<String>,
    pub bottom: Option<String>,
    pub dress: Option<String>,
    pub shoe: Option<String>,
}

/// What the stylist knows about the client's taste.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StyleProfile {
    pub styles: Vec<Style>,
    pub sizes: Sizes,
    pub budget: BudgetBand,
    pub notes: String,
}

impl StyleProfile {
    /// A style profile from a form's or a request's raw fields; errors name the field
    /// (`styles[1]`, `sizes.top`, `budget`, `style_notes`). Repeated styles count once.
    pub fn parse(
        styles: &[String],
        sizes: &Sizes,
        budget: Option<&str>,
        notes: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut parsed = Vec::new();
        for (i, raw) in styles.iter().enumerate() {
            if let Some(style) = errors.collect(Style::parse(&format!("styles[{i}]"), raw))
                && !parsed.contains(&style)
            {
                parsed.push(style);
            }
        }
        let sizes = Sizes {
            top: errors.collect(size("sizes.top", &sizes.top)).flatten(),
            bottom: errors
                .collect(size("sizes.bottom", &sizes.bottom))
                .flatten(),
            dress: errors.collect(size("sizes.dress", &sizes.dress)).flatten(),
            shoe: errors.collect(size("sizes.shoe", &sizes.shoe)).flatten(),
        };
        let budget = match budget.map(str::trim).filter(|b| !b.is_empty()) {
            Some(raw) => errors.collect(BudgetBand::parse(raw)).unwrap_or_default(),
            None => BudgetBand::default(),
        };
        let notes = notes.trim().to_owned();
        if notes.chars().count() > MAX_STYLE_NOTES_CHARS {
            errors.0.push(FieldError::new(
                "style_notes",
                format!("Keep style notes to {MAX_STYLE_NOTES_CHARS} characters or fewer."),
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                styles: parsed,
                sizes,
                budget,
                notes,
            })
        } else {
            Err(errors)
        }
    }
}

/// Something that happened with a client, recorded by a stylist or an integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Activity {
    /// A Fix was delivered.
    Fix(FixInput),
    /// A Freestyle purchase.
    Purchase(PurchaseInput),
    Feedback(FeedbackInput),
    /// The client opened an email (as the delivery service reports it).
    EmailOpen(EngagementInput),
    /// The client clicked a link in an email.
    EmailClick(EngagementInput),
}

/// When an email was opened or clicked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EngagementInput {
    /// RFC 3339 (`2026-03-14T09:30:00Z`), not in the future; now when empty.
    #[serde(default)]
    pub at: String,
}

impl Activity {
    /// Adds the activity to `profile` as of `today` (an email open or click without a time
    /// counts at the end of that day); errors name the field.
    pub fn apply(&self, profile: &mut Profile, today: NaiveDate) -> Result<(), ValidationErrors> {
        let end_of_day = today
            .and_hms_opt(23, 59, 59)
            .expect("a valid time of day")
            .and_utc();
        self.apply_at(profile, end_of_day)
    }

    /// Adds the activity to `profile` as of `now`; errors name the field. An empty date
    /// means today, an empty time now. An open or click earlier than the one on record
    /// leaves the record as it is.
    pub fn apply_at(
        &self,
        profile: &mut Profile,
        now: DateTime<Utc>,
    ) -> Result<(), ValidationErrors> {
        let today = now.date_naive();
        let at_or_now = |input: &EngagementInput| {
            if input.at.trim().is_empty() {
                Ok(now)
            } else {
                parse_instant("at", &input.at, now).map_err(|e| ValidationErrors(vec![e]))
            }
        };

        let or_today = |date: &str| {
            if date.trim().is_empty() {
                today.to_string()
            } else {
                date.to_owned()
            }
        };
        let added = match self {
            Self::Fix(input) => {
                let input = FixInput {
                    delivered_on: or_today(&input.delivered_on),
                    ..input.clone()
                };
                profile.add_fix(input.parse("", today)?)
            }
            Self::Purchase(input) => {
                let input = PurchaseInput {
                    purchased_on: or_today(&input.purchased_on),
                    ..input.clone()
                };
                profile.add_purchase(input.parse("", today)?)
            }
            Self::Feedback(input) => {
                let input = FeedbackInput {
                    given_on: or_today(&input.given_on),
                    ..input.clone()
                };
                profile.add_feedback(input.parse("", today)?)
            }
            Self::EmailOpen(input) => {
                let at = at_or_now(input)?;
                let mut engagement = profile.engagement();
                let hour = chrono::Timelike::hour(&at) as usize;
                engagement.open_hours[hour] = engagement.open_hours[hour].saturating_add(1);
                engagement.last_opened_at = engagement.last_opened_at.max(Some(at));
                profile.set_engagement(engagement);
                Ok(())
            }
            Self::EmailClick(input) => {
                let at = at_or_now(input)?;
                let mut engagement = profile.engagement();
                engagement.last_clicked_at = engagement.last_clicked_at.max(Some(at));
                profile.set_engagement(engagement);
                Ok(())
            }
        };
        added.map_err(|e| ValidationErrors(vec![e]))
    }
}

/// One Fix: a box of items a stylist picked, delivered on a date; the client keeps some
/// and pays for what they keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FixRecord", into = "FixRecord")]
pub struct Fix {
    delivered_on: NaiveDate,
    items_sent: u8,
    items_kept: u8,
    order_value: Money,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct FixRecord {
    delivered_on: NaiveDate,
    items_sent: u8,
    items_kept: u8,
    order_value: Money,
}

#[cfg(feature = "openapi")]
schema_as!(Fix, FixRecord, "Fix");
#[cfg(feature = "openapi")]
schema_as!(Rating, u8, "Rating");
#[cfg(feature = "openapi")]
schema_as!(Feedback, FeedbackRecord, "Feedback");
#[cfg(feature = "openapi")]
schema_as!(Profile, ProfileRecord, "Profile");

impl Fix {
    /// The most items a Fix holds.
    pub const MAX_ITEMS: u8 = 10;

    /// A Fix whose counts make sense: 1 to 10 items sent, no more kept than sent.
    pub fn new(
        delivered_on: NaiveDate,
        items_sent: u8,
        items_kept: u8,
        order_value: Money,
    ) -> Result<Self, ValidationErrors> {
        Self::checked_at(
            None,
            delivered_on,
            i64::from(items_sent),
            i64::from(items_kept),
            order_value,
        )
    }

    /// Checks counts and value; errors are named `{path}.field`, or bare without a path.
    fn checked_at(
        path: Option<&str>,
        delivered_on: NaiveDate,
        items_sent: i64,
        items_kept: i64,
        order_value: Money,
    ) -> Result<Self, ValidationErrors> {
        let field = |name: &str| path.map_or_else(|| name.to_owned(), |p| format!("{p}.{name}"));
        let mut errors = ValidationErrors::default();
        if !(1..=i64::from(Self::MAX_ITEMS)).contains(&items_sent) {
            errors.0.push(FieldError::new(
                field("items_sent"),
                format!("A Fix holds 1 to {} items.", Self::MAX_ITEMS),
            ));
        }
        if items_kept < 0 || items_kept > items_sent.max(0) {
            errors.0.push(FieldError::new(
                field("items_kept"),
                "Items kept must be between 0 and the number of items sent.",
            ));
        }
        if items_kept == 0 && order_value.cents() > 0 {
            errors.0.push(FieldError::new(
                field("order_value"),
                "A Fix where nothing was kept has no order value.",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            delivered_on,
            items_sent: items_sent as u8,
            items_kept: items_kept as u8,
            order_value,
        })
    }

    pub fn delivered_on(&self) -> NaiveDate {
        self.delivered_on
    }
    pub fn items_sent(&self) -> u8 {
        self.items_sent
    }
    pub fn items_kept(&self) -> u8 {
        self.items_kept
    }
    pub fn order_value(&self) -> Money {
        self.order_value
    }
}

impl TryFrom<FixRecord> for Fix {
    type Error = ValidationErrors;
    fn try_from(r: FixRecord) -> Result<Self, Self::Error> {
        Self::new(r.delivered_on, r.items_sent, r.items_kept, r.order_value)
    }
}

impl From<Fix> for FixRecord {
    fn from(f: Fix) -> Self {
        Self {
            delivered_on: f.delivered_on,
            items_sent: f.items_sent,
            items_kept: f.items_kept,
            order_value: f.order_value,
        }
    }
}

/// A Freestyle purchase: something the client bought directly, outside a Fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Purchase {
    pub purchased_on: NaiveDate,
    pub amount: Money,
}

/// A rating from 1 (disliked) to 5 (loved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Rating(u8);

impl Rating {
    /// A neutral 3.
    pub const MIDDLE: Self = Self(3);

    pub fn parse(field: &str, raw: i64) -> Result<Self, FieldError> {
        if (1..=5).contains(&raw) {
            Ok(Self(raw as u8))
        } else {
            Err(FieldError::new(
                field,
                "A rating is a whole number from 1 to 5.",
            ))
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Rating {
    type Error = FieldError;
    fn try_from(raw: u8) -> Result<Self, Self::Error> {
        Self::parse("rating", i64::from(raw))
    }
}

impl From<Rating> for u8 {
    fn from(rating: Rating) -> Self {
        rating.0
    }
}

/// How a free-text note reads: negative, neutral or positive, from -2 to +2.
pub type Sentiment = i8;

/// Feedback the client gave: a rating and an optional note. The note's sentiment is read
/// once, when the feedback is recorded, so scoring never re-reads text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FeedbackRecord", into = "FeedbackRecord")]
pub struct Feedback {
    given_on: NaiveDate,
    rating: Rating,
    note: Option<String>,
    sentiment: Sentiment,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct FeedbackRecord {
    given_on: NaiveDate,
    rating: Rating,
    #[serde(default)]
    note: Option<String>,
}

impl Feedback {
    pub const MAX_NOTE_CHARS: usize = 1000;

    pub fn new(
        given_on: NaiveDate,
        rating: Rating,
        note: Option<&str>,
    ) -> Result<Self, FieldError> {
        Self::checked("feedback", given_on, rating, note)
    }

    fn checked(
        path: &str,
        given_on: NaiveDate,
        rating: Rating,
        note: Option<&str>,
    ) -> Result<Self, FieldError> {
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if let Some(note) = note
            && note.chars().count() > Self::MAX_NOTE_CHARS
        {
            return Err(FieldError::new(
                format!("{path}.note"),
                format!(
                    "Keep notes to {} characters or fewer.",
                    Self::MAX_NOTE_CHARS
                ),
            ));
        }
        Ok(Self {
            given_on,
            rating,
            sentiment: note.map_or(0, note_sentiment),
            note: note.map(str::to_owned),
        })
    }

    pub fn given_on(&self) -> NaiveDate {
        self.given_on
    }
    pub fn rating(&self) -> Rating {
        self.rating
    }
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    pub fn sentiment(&self) -> Sentiment {
        self.sentiment
    }
}

impl TryFrom<FeedbackRecord> for Feedback {
    type Error = FieldError;
    fn try_from(r: FeedbackRecord) -> Result<Self, Self::Error> {
        Self::new(r.given_on, r.rating, r.note.as_deref())
    }
}

impl From<Feedback> for FeedbackRecord {
    fn from(f: Feedback) -> Self {
        Self {
            given_on: f.given_on,
            rating: f.rating,
            note: f.note,
        }
    }
}

const POSITIVE_WORDS: [&str; 16] = [
    "love",
    "loved",
    "loves",
    "great",
    "perfect",
    "perfectly",
    "amazing",
    "favourite",
    "favorite",
    "happy",
    "beautiful",
    "excellent",
    "compliments",
    "wonderful",
    "fits",
    "thanks",
];
const NEGATIVE_WORDS: [&str; 18] = [
    "disappointed",
    "disappointing",
    "hate",
    "hated",
    "poor",
    "cheap",
    "itchy",
    "awful",
    "wrong",
    "returned",
    "expensive",
    "unhappy",
    "cancel",
    "boring",
    "tight",
    "frustrated",
    "worst",
    "never",
];

/// A small word-list reading of a note: counts of happy against unhappy words, capped at ±2.
/// Crude on purpose: it is explainable ("notes sound unhappy") and never surprising.
pub fn note_sentiment(note: &str) -> Sentiment {
    let mut balance: i32 = 0;
    for word in note
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        if POSITIVE_WORDS.contains(&word.as_str()) {
            balance += 1;
        } else if NEGATIVE_WORDS.contains(&word.as_str()) {
            balance -= 1;
        }
    }
    balance.clamp(-2, 2) as Sentiment
}

/// The last time the client opened or clicked one of our emails, and at which hours of the
/// day (UTC) they open them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailEngagement {
    pub last_opened_at: Option<DateTime<Utc>>,
    pub last_clicked_at: Option<DateTime<Utc>>,
    /// Opens per hour of the day, UTC (index 0 is 00:00–00:59).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<u16>))]
    pub open_hours: [u16; 24],
}

impl EmailEngagement {
    /// Opens needed before an hour counts as the client's usual one.
    pub const USUAL_HOUR_MIN_OPENS: u32 = 3;

    /// The hour of the day (UTC) the client opens emails most, once they have opened
    /// enough of them; the earliest such hour on a tie.
    pub fn usual_open_hour(&self) -> Option<u32> {
        let total: u32 = self.open_hours.iter().map(|&n| u32::from(n)).sum();
        if total < Self::USUAL_HOUR_MIN_OPENS {
            return None;
        }
        let most = *self.open_hours.iter().max()?;
        self.open_hours
            .iter()
            .position(|&n| n == most)
            .map(|h| h as u32)
    }
}

/// The client's record beyond identity. Lists are kept oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProfileRecord", into = "ProfileRecord")]
pub struct Profile {
    consent: EmailConsent,
    style: StyleProfile,
    signed_up_on: NaiveDate,
    fixes: Vec<Fix>,
    purchases: Vec<Purchase>,
    feedback: Vec<Feedback>,
    engagement: EmailEngagement,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ProfileRecord {
    consent: EmailConsent,
    #[serde(default)]
    style: StyleProfile,
    signed_up_on: NaiveDate,
    #[serde(default)]
    fixes: Vec<Fix>,
    #[serde(default)]
    purchases: Vec<Purchase>,
    #[serde(default)]
    feedback: Vec<Feedback>,
    #[serde(default)]
    engagement: EmailEngagement,
}

impl TryFrom<ProfileRecord> for Profile {
    type Error = String;
    fn try_from(r: ProfileRecord) -> Result<Self, Self::Error> {
        let profile = Self {
            consent: r.consent,
            style: r.style,
            signed_up_on: r.signed_up_on,
            fixes: r.fixes,
            purchases: r.purchases,
            feedback: r.feedback,
            engagement: r.engagement,
        };
        profile.check_order().map_err(|e| e.to_string())?;
        Ok(profile)
    }
}

impl From<Profile> for ProfileRecord {
    fn from(p: Profile) -> Self {
        Self {
            consent: p.consent,
            style: p.style,
            signed_up_on: p.signed_up_on,
            fixes: p.fixes,
            purchases: p.purchases,
            feedback: p.feedback,
            engagement: p.engagement,
        }
    }
}

/// Raw profile fields as a form or an API request sends them. Every field is optional;
/// what is missing takes the default of a client who just signed up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ProfileInput {
    /// `true` records an opt-in now; `false` (the default) records no consent.
    pub email_opt_in: bool,
    /// When the client unsubscribed (RFC 3339); outranks `email_opt_in`.
    pub unsubscribed_at: Option<String>,
    pub styles: Vec<String>,
    pub sizes: Sizes,
    pub budget: Option<String>,
    pub style_notes: String,
    /// ISO date (YYYY-MM-DD); today when absent.
    pub signed_up_on: Option<String>,
    pub fixes: Vec<FixInput>,
    pub purchases: Vec<PurchaseInput>,
    pub feedback: Vec<FeedbackInput>,
    pub last_opened_at: Option<String>,
    pub last_clicked_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FixInput {
    pub delivered_on: String,
    pub items_sent: i64,
    pub items_kept: i64,
    /// Dollars, as text (`"129.50"`).
    pub order_value: String,
}

impl FixInput {
    /// The Fix this input describes, as of `today`; errors are named `{path}.field`
    /// (pass an empty path for bare field names).
    pub fn parse(&self, path: &str, today: NaiveDate) -> Result<Fix, ValidationErrors> {
        let field = |name: &str| field_path(path, name);
        let mut errors = ValidationErrors::default();
        let date = errors.collect(parse_date(
            &field("delivered_on"),
            &self.delivered_on,
            today,
        ));
        let value = errors.collect(Money::parse(&field("order_value"), &self.order_value));
        let prefix = if path.is_empty() { None } else { Some(path) };
        // The counts are checked even when the date or value is bad, so every problem is
        // reported at once.
        let counts = Fix::checked_at(
            prefix,
            date.unwrap_or(NaiveDate::MIN),
            self.items_sent,
            self.items_kept,
            value.unwrap_or_default(),
        );
        match counts {
            Ok(fix) if errors.is_empty() => Ok(fix),
            Ok(_) => Err(errors),
            Err(bad) => {
                errors.0.extend(bad.0);
                Err(errors)
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurchaseInput {
    pub purchased_on: String,
    pub amount: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    pub given_on: String,
    pub rating: i64,
    #[serde(default)]
    pub note: Option<String>,
}

/// `{path}.name`, or the bare name for an empty path.
fn field_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

impl PurchaseInput {
    /// The purchase this input describes, as of `today`; errors are named `{path}.field`
    /// (pass an empty path for bare field names).
    pub fn parse(&self, path: &str, today: NaiveDate) -> Result<Purchase, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let date = errors.collect(parse_date(
            &field_path(path, "purchased_on"),
            &self.purchased_on,
            today,
        ));
        let amount = errors.collect(Money::parse(&field_path(path, "amount"), &self.amount));
        if amount.is_some_and(|a| a.cents() == 0) {
            errors.0.push(FieldError::new(
                field_path(path, "amount"),
                "A purchase has an amount above zero.",
            ));
        }
        match (date, amount) {
            (Some(purchased_on), Some(amount)) if errors.is_empty() => Ok(Purchase {
                purchased_on,
                amount,
            }),
            _ => Err(errors),
        }
    }
}

impl FeedbackInput {
    /// The feedback this input describes, as of `today`; errors are named `{path}.field`
    /// (pass an empty path for bare field names).
    pub fn parse(&self, path: &str, today: NaiveDate) -> Result<Feedback, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let date = errors.collect(parse_date(
            &field_path(path, "given_on"),
            &self.given_on,
            today,
        ));
        let rating = errors.collect(Rating::parse(&field_path(path, "rating"), self.rating));
        let (Some(date), Some(rating)) = (date, rating) else {
            return Err(errors);
        };
        let prefix = if path.is_empty() { "feedback" } else { path };
        match Feedback::checked(prefix, date, rating, self.note.as_deref()) {
            Ok(feedback) => Ok(feedback),
            Err(error) if path.is_empty() => Err(ValidationErrors::single("note", error.message)),
            Err(error) => Err(ValidationErrors(vec![error])),
        }
    }
}

/// Limits that keep one record a sensible size.
const MAX_LIST_LEN: usize = 500;
const MAX_STYLE_NOTES_CHARS: usize = 2000;
const MAX_SIZE_CHARS: usize = 12;

/// Parses an ISO date (`2026-03-14`) for `field`, refusing dates after `today`.
pub fn parse_date(field: &str, raw: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            format!("Enter a date as YYYY-MM-DD (got \"{}\").", raw.trim()),
        )
    })?;
    if date > today {
        return Err(FieldError::new(
            field,
            format!("{date} is in the future; only past dates can be recorded."),
        ));
    }
    Ok(date)
}

/// Parses an RFC 3339 instant for `field`, refusing instants after `now`.
pub fn parse_instant(
    field: &str,
    raw: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldError> {
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| {
            FieldError::new(
                field,
                format!(
                    "Enter a date and time such as 2026-03-14T09:30:00Z (got \"{}\").",
                    raw.trim()
                ),
            )
        })?
        .with_timezone(&Utc);
    if at > now {
        return Err(FieldError::new(
            field,
            "This time is in the future; only past events can be recorded.",
        ));
    }
    Ok(at)
}

impl Profile {
    /// The profile of a client who signed up on `signed_up_on` and has done nothing since.
    pub fn joined(signed_up_on: NaiveDate, consent: EmailConsent) -> Self {
        Self {
            consent,
            style: StyleProfile::default(),
            signed_up_on,
            fixes: Vec::new(),
            purchases: Vec::new(),
            feedback: Vec::new(),
            engagement: EmailEngagement::default(),
        }
    }

    /// Checks every field as of `now` and reports all that are wrong, each by its path.
    pub fn parse(input: &ProfileInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let today = now.date_naive();
        let mut errors = ValidationErrors::default();

        let unsubscribed_at = input
            .unsubscribed_at
            .as_deref()
            .and_then(|raw| errors.collect(parse_instant("unsubscribed_at", raw, now)));
        let consent = match (unsubscribed_at, input.email_opt_in) {
            (Some(at), _) => EmailConsent::Unsubscribed { at },
            (None, true) => EmailConsent::OptedIn { at: now },
            (None, false) => EmailConsent::NotGiven,
        };

        let style = errors.collect_all(StyleProfile::parse(
            &input.styles,
            &input.sizes,
            input.budget.as_deref(),
            &input.style_notes,
        ));

        let signed_up_on = match &input.signed_up_on {
            Some(raw) => errors.collect(parse_date("signed_up_on", raw, today)),
            None => Some(today),
        };

        for (field, len) in [
            ("fixes", input.fixes.len()),
            ("purchases", input.purchases.len()),
            ("feedback", input.feedback.len()),
        ] {
            if len > MAX_LIST_LEN {
                errors.0.push(FieldError::new(
                    field,
                    format!("At most {MAX_LIST_LEN} entries can be recorded at once."),
                ));
            }
        }

        let mut fixes = Vec::with_capacity(input.fixes.len());
        for (i, fix) in input.fixes.iter().enumerate() {
            match fix.parse(&format!("fixes[{i}]"), today) {
                Ok(fix) => fixes.push(fix),
                Err(bad) => errors.0.extend(bad.0),
            }
        }
        let mut purchases = Vec::with_capacity(input.purchases.len());
        for (i, purchase) in input.purchases.iter().enumerate() {
            match purchase.parse(&format!("purchases[{i}]"), today) {
                Ok(purchase) => purchases.push(purchase),
                Err(bad) => errors.0.extend(bad.0),
            }
        }
        let mut feedback = Vec::with_capacity(input.feedback.len());
        for (i, item) in input.feedback.iter().enumerate() {
            match item.parse(&format!("feedback[{i}]"), today) {
                Ok(item) => feedback.push(item),
                Err(bad) => errors.0.extend(bad.0),
            }
        }

        let engagement = EmailEngagement {
            last_opened_at: input
                .last_opened_at
                .as_deref()
                .and_then(|raw| errors.collect(parse_instant("last_opened_at", raw, now))),
            last_clicked_at: input
                .last_clicked_at
                .as_deref()
                .and_then(|raw| errors.collect(parse_instant("last_clicked_at", raw, now))),
            open_hours: [0; 24],
        };

        let Some(signed_up_on) = signed_up_on else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        fixes.sort_by_key(Fix::delivered_on);
        purchases.sort_by_key(|p| p.purchased_on);
        feedback.sort_by_key(Feedback::given_on);
        let profile = Self {
            consent,
            style: style.unwrap_or_default(),
            signed_up_on,
            fixes,
            purchases,
            feedback,
            engagement,
        };
        profile.check_order()?;
        Ok(profile)
    }

    /// Nothing in the relationship can predate the sign-up, and lists are oldest first.
    fn check_order(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let before_signup = |field: &str| {
            FieldError::new(
                field,
                "This date is before the client signed up (signed_up_on).",
            )
        };
        if self
            .fixes
            .first()
            .is_some_and(|f| f.delivered_on < self.signed_up_on)
        {
            errors.0.push(before_signup("fixes"));
        }
        if self
            .purchases
            .first()
            .is_some_and(|p| p.purchased_on < self.signed_up_on)
        {
            errors.0.push(before_signup("purchases"));
        }
        if self
            .feedback
            .first()
            .is_some_and(|f| f.given_on < self.signed_up_on)
        {
            errors.0.push(before_signup("feedback"));
        }
        let sorted = self.fixes.is_sorted_by_key(|f| f.delivered_on)
            && self.purchases.is_sorted_by_key(|p| p.purchased_on)
            && self.feedback.is_sorted_by_key(|f| f.given_on);
        if !sorted {
            errors
                .0
                .push(FieldError::new("fixes", "History must be in date order."));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The latest date or instant anywhere in the record; scoring refuses a `now` before it.
    pub fn latest_date(&self) -> NaiveDate {
        let mut latest = self.signed_up_on;
        let dates = [
            self.fixes.last().map(|f| f.delivered_on),
            self.purchases.last().map(|p| p.purchased_on),
            self.feedback.last().map(|f| f.given_on),
            self.engagement.last_opened_at.map(|at| at.date_naive()),
            self.engagement.last_clicked_at.map(|at| at.date_naive()),
        ];
        for date in dates.into_iter().flatten() {
            latest = latest.max(date);
        }
        latest
    }

    /// Every purchase the model of repeat buying counts: Fix deliveries and Freestyle
    /// purchases, each list in date order.
    pub fn purchase_dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.fixes
            .iter()
            .map(|f| f.delivered_on)
            .chain(self.purchases.iter().map(|p| p.purchased_on))
    }

    /// The client's purchase summary for the BG/NBD model as of the end of `as_of`, or
    /// `None` if they had not bought by then.
    pub fn repeat_summary(&self, as_of: NaiveDate) -> Option<crate::bgnbd::CustomerSummary> {
        let days: Vec<i64> = self
            .purchase_dates()
            .map(|d| (d - as_of).num_days())
            .collect();
        crate::bgnbd::summarise(&days, 0)
    }

    pub fn consent(&self) -> EmailConsent {
        self.consent
    }
    pub fn style(&self) -> &StyleProfile {
        &self.style
    }
    pub fn signed_up_on(&self) -> NaiveDate {
        self.signed_up_on
    }
    pub fn fixes(&self) -> &[Fix] {
        &self.fixes
    }
    pub fn purchases(&self) -> &[Purchase] {
        &self.purchases
    }
    pub fn feedback(&self) -> &[Feedback] {
        &self.feedback
    }
    pub fn engagement(&self) -> EmailEngagement {
        self.engagement
    }

    /// Records a delivered Fix, keeping the history in date order.
    pub fn add_fix(&mut self, fix: Fix) -> Result<(), FieldError> {
        if fix.delivered_on < self.signed_up_on {
            return Err(FieldError::new(
                "delivered_on",
                "This date is before the client signed up.",
            ));
        }
        let at = self
            .fixes
            .partition_point(|f| f.delivered_on <= fix.delivered_on);
        self.fixes.insert(at, fix);
        Ok(())
    }

    /// Records a Freestyle purchase, keeping the history in date order.
    pub fn add_purchase(&mut self, purchase: Purchase) -> Result<(), FieldError> {
        if purchase.purchased_on < self.signed_up_on {
            return Err(FieldError::new(
                "purchased_on",
                "This date is before the client signed up.",
            ));
        }
        let at = self
            .purchases
            .partition_point(|p| p.purchased_on <= purchase.purchased_on);
        self.purchases.insert(at, purchase);
        Ok(())
    }

    /// Records feedback, keeping it in date order.
    pub fn add_feedback(&mut self, feedback: Feedback) -> Result<(), FieldError> {
        if feedback.given_on < self.signed_up_on {
            return Err(FieldError::new(
                "given_on",
                "This date is before the client signed up.",
            ));
        }
        let at = self
            .feedback
            .partition_point(|f| f.given_on <= feedback.given_on);
        self.feedback.insert(at, feedback);
        Ok(())
    }

    pub fn set_consent(&mut self, consent: EmailConsent) {
        self.consent = consent;
    }

    pub fn set_style(&mut self, style: StyleProfile) {
        self.style = style;
    }

    pub fn set_engagement(&mut self, engagement: EmailEngagement) {
        self.engagement = engagement;
    }
}

fn size(field: &str, raw: &Option<String>) -> Result<Option<String>, FieldError> {
    let Some(raw) = raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > MAX_SIZE_CHARS || raw.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("A size is at most {MAX_SIZE_CHARS} printable characters, such as M or 32x30."),
        ));
    }
    Ok(Some(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fix(date: &str, sent: i64, kept: i64, value: &str) -> FixInput {
        FixInput {
            delivered_on: date.into(),
            items_sent: sent,
            items_kept: kept,
            order_value: value.into(),
        }
    }

    #[test]
    fn an_empty_input_is_a_client_who_just_signed_up() {
        let profile = Profile::parse(&ProfileInput::default(), now()).unwrap();
        assert_eq!(profile.signed_up_on(), now().date_naive());
        assert_eq!(profile.consent(), EmailConsent::NotGiven);
        assert!(profile.fixes().is_empty());
    }

    #[test]
    fn history_is_parsed_and_kept_in_date_order() {
        let input = ProfileInput {
            email_opt_in: true,
            signed_up_on: Some("2025-01-10".into()),
            fixes: vec![
                fix("2025-03-01", 5, 2, "150"),
                fix("2025-02-01", 5, 3, "$210.50"),
            ],
            feedback: vec![FeedbackInput {
                given_on: "2025-03-05".into(),
                rating: 5,
                note: Some("Loved the jacket, perfect fit!".into()),
            }],
            styles: vec!["Classic".into(), "classic".into(), "edgy".into()],
            ..ProfileInput::default()
        };
        let profile = Profile::parse(&input, now()).unwrap();
        let dates: Vec<_> = profile
            .fixes()
            .iter()
            .map(|f| f.delivered_on().to_string())
            .collect();
        assert_eq!(dates, ["2025-02-01", "2025-03-01"]);
        assert_eq!(profile.fixes()[0].order_value(), Money::from_cents(21050));
        assert_eq!(profile.style().styles, [Style::Classic, Style::Edgy]);
        assert!(profile.consent().allows_email());
        assert_eq!(profile.feedback()[0].sentiment(), 2);
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        let input = ProfileInput {
            signed_up_on: Some("2025-01-10".into()),
            fixes: vec![
                fix("2025-02-01", 5, 6, "100"),
                fix("01/02/2025", 0, 0, "abc"),
                fix("2027-01-01", 3, 0, "20"),
            ],
            purchases: vec![PurchaseInput {
                purchased_on: "2025-02-02".into(),
                amount: "0".into(),
            }],
            feedback: vec![FeedbackInput {
                given_on: "2025-02-03".into(),
                rating: 7,
                note: None,
            }],
            styles: vec!["gothic".into()],
            budget: Some("cheap".into()),
            last_opened_at: Some("yesterday".into()),
            ..ProfileInput::default()
        };
        let errors = Profile::parse(&input, now()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "styles[0]",
            "budget",
            "fixes[0].items_kept",
            "fixes[1].delivered_on",
            "fixes[1].order_value",
            "fixes[2].delivered_on",
            "purchases[0].amount",
            "feedback[0].rating",
            "last_opened_at",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
        assert!(
            errors
                .message_for("fixes[2].delivered_on")
                .unwrap()
                .contains("future")
        );
    }

    #[test]
    fn history_before_sign_up_is_rejected() {
        let input = ProfileInput {
            signed_up_on: Some("2025-05-01".into()),
            fixes: vec![fix("2025-04-01", 5, 1, "40")],
            ..ProfileInput::default()
        };
        let errors = Profile::parse(&input, now()).unwrap_err();
        assert!(errors.message_for("fixes").unwrap().contains("signed up"));
    }

    #[test]
    fn unsubscribing_outranks_an_opt_in() {
        let input = ProfileInput {
            email_opt_in: true,
            unsubscribed_at: Some("2026-05-01T08:00:00Z".into()),
            ..ProfileInput::default()
        };
        let profile = Profile::parse(&input, now()).unwrap();
        assert!(!profile.consent().allows_email());
    }

    #[test]
    fn money_parses_dollars_and_cents() {
        assert_eq!(Money::parse("m", "12").unwrap().cents(), 1200);
        assert_eq!(Money::parse("m", "12.5").unwrap().cents(), 1250);
        assert_eq!(Money::parse("m", " $0.07 ").unwrap().cents(), 7);
        assert_eq!(Money::parse("m", ".5").unwrap().cents(), 50);
        for bad in ["", "-3", "1.234", "1,000", "12e3", "."] {
            assert_eq!(Money::parse("m", bad).unwrap_err().field, "m", "{bad}");
        }
        assert!(Money::parse("m", "100000.01").is_err());
        assert_eq!(Money::from_cents(21050).to_string(), "$210.50");
    }

    #[test]
    fn deserialising_a_fix_rechecks_its_counts() {
        let bad =
            r#"{"delivered_on":"2025-01-01","items_sent":3,"items_kept":4,"order_value":100}"#;
        assert!(serde_json::from_str::<Fix>(bad).is_err());
        let good =
            r#"{"delivered_on":"2025-01-01","items_sent":3,"items_kept":1,"order_value":100}"#;
        assert_eq!(serde_json::from_str::<Fix>(good).unwrap().items_kept(), 1);
    }

    #[test]
    fn a_profile_round_trips_through_json() {
        let input = ProfileInput {
            email_opt_in: true,
            signed_up_on: Some("2025-01-10".into()),
            fixes: vec![fix("2025-02-01", 5, 3, "210.50")],
            feedback: vec![FeedbackInput {
                given_on: "2025-02-03".into(),
                rating: 2,
                note: Some("Too tight and itchy".into()),
            }],
            ..ProfileInput::default()
        };
        let profile = Profile::parse(&input, now()).unwrap();
        let json = serde_json::to_string(&profile).unwrap();
        let back: Profile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, profile);
        assert_eq!(back.feedback()[0].sentiment(), -2);
    }

    #[test]
    fn note_sentiment_reads_happy_and_unhappy_words() {
        assert_eq!(note_sentiment("Loved it, great colours"), 2);
        assert_eq!(note_sentiment("fine"), 0);
        assert_eq!(
            note_sentiment("Disappointed. Everything was wrong and cheap"),
            -2
        );
        assert_eq!(
            note_sentiment("love the top but the jeans were too tight"),
            0
        );
    }

    #[test]
    fn activities_are_added_in_date_order_and_bad_fields_are_named_bare() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let mut profile = Profile::joined(
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            EmailConsent::NotGiven,
        );
        let fix = |date: &str| {
            Activity::Fix(FixInput {
                delivered_on: date.into(),
                items_sent: 5,
                items_kept: 2,
                order_value: "120.00".into(),
            })
        };
        fix("2026-05-01").apply(&mut profile, today).unwrap();
        fix("2026-03-01").apply(&mut profile, today).unwrap();
        let dates: Vec<_> = profile
            .fixes()
            .iter()
            .map(|f| f.delivered_on().to_string())
            .collect();
        assert_eq!(dates, ["2026-03-01", "2026-05-01"]);

        let bad = Activity::Feedback(FeedbackInput {
            given_on: "2026-07-01".into(),
            rating: 9,
            note: None,
        });
        let errors = bad.apply(&mut profile, today).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["given_on", "rating"]);
        let free = Activity::Purchase(PurchaseInput {
            purchased_on: "2026-05-02".into(),
            amount: "0".into(),
        });
        assert_eq!(
            free.apply(&mut profile, today).unwrap_err().0[0].field,
            "amount"
        );
        let early = Activity::Purchase(PurchaseInput {
            purchased_on: "2025-12-01".into(),
            amount: "10".into(),
        });
        assert_eq!(
            early.apply(&mut profile, today).unwrap_err().0[0].field,
            "purchased_on"
        );
        assert!(profile.purchases().is_empty() && profile.feedback().is_empty());
    }
}
