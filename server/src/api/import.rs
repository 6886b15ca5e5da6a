//! `POST /api/v1/clients/import`: many new clients from CSV or JSON lines, read as the
//! body streams in. Each row is added on its own, exactly like `POST /api/v1/clients`
//! (same checks, same pipeline); a bad row is reported with its fields and the others
//! still go in. Nothing of a bad row is written.

use super::{ApiError, field_of};
use crate::auth::SignedIn;
use crate::startup::AppState;
use app::service::ServiceError;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use domain::profile::{ProfileInput, Sizes};
use domain::user::User;
use domain::{ClientInput, FieldError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest import body accepted.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
/// Rows listed with their errors; beyond it only counted.
const MAX_LISTED_ERRORS: usize = 1_000;

/// What an import did, row by row.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Data rows read (the CSV header not counted).
    pub rows: u64,
    pub created: u64,
    pub failed: u64,
    /// The failed rows (the first 1,000), each with every field at fault.
    pub errors: Vec<RowError>,
    /// More rows failed than are listed.
    pub errors_truncated: bool,
}

/// One refused row.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// The line the row starts on (1 is the first line of the body).
    pub line: u64,
    pub errors: Vec<FieldError>,
}

impl ImportReport {
    fn refuse(&mut self, line: u64, errors: Vec<FieldError>) {
        self.failed += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(RowError { line, errors });
        } else {
            self.errors_truncated = true;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
}

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/x-ndjson" | "application/jsonl" | "application/json-lines" => {
            Ok(Format::JsonLines)
        }
        _ => Err(ApiError::UnsupportedMediaType {
            expected: "CSV (Content-Type: text/csv) or JSON lines (Content-Type: application/x-ndjson)",
        }),
    }
}

/// Import clients from CSV (a header row naming the columns: `name`, `email`,
/// `stylist_id` required; `status`, `signed_up_on`, `email_opt_in`, `styles` (separated by
/// `;`), `budget`, `style_notes`, `top`, `bottom`, `dress`, `shoe` optional) or from JSON
/// lines (one `ClientInput` per line). Up to 64 MiB.
#[utoipa::path(
    post,
    path = "/api/v1/clients/import",
    tag = "clients",
    request_body(content(
        (String = "text/csv", example = "name,email,stylist_id,email_opt_in\nAda Lovelace,ada@example.com,st-maya,true\n"),
        (ClientInput = "application/x-ndjson"),
    )),
    responses((status = 200, description = "What was created and which rows failed, with their fields", body = ImportReport)),
)]
pub async fn import_clients(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let format = format_of(&headers)?;
    let mut stream = body.into_data_stream();
    let mut reader = Reader::new(format);
    let mut report = ImportReport::default();
    let mut columns: Option<Vec<Column>> = None;
    loop {
        let chunk = match stream.next().await {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(error)) => {
                return Err(if error.to_string().contains("length limit") {
                    ApiError::TooLarge {
                        limit: MAX_IMPORT_BYTES,
                    }
                } else {
                    ApiError::BadBody(format!("the body could not be read: {error}"))
                });
            }
            None => None,
        };
        let finished = chunk.is_none();
        let records = match chunk {
            Some(chunk) => reader.push(&chunk),
            None => reader.finish(),
        }
        .map_err(ApiError::BadBody)?;
        for (line, record) in records {
            if record.trim().is_empty() {
                continue;
            }
            let input = match format {
                Format::JsonLines => serde_json::from_str::<ClientInput>(&record).map_err(|e| {
                    let message = e.to_string();
                    vec![FieldError::new(
                        field_of(&message).unwrap_or_else(|| "row".to_owned()),
                        message,
                    )]
                }),
                Format::Csv => {
                    let fields = split_csv(&record);
                    match &columns {
                        None => {
                            columns = Some(header_columns(&fields)?);
                            continue;
                        }
                        Some(columns) => client_from_csv(columns, &fields),
                    }
                }
            };
            report.rows += 1;
            match input {
                Ok(input) => add(&state, &user, input, line, &mut report).await?,
                Err(errors) => report.refuse(line, errors),
            }
        }
        if finished {
            break;
        }
    }
    if format == Format::Csv && columns.is_none() {
        return Err(ApiError::Rejected(domain::ValidationErrors::single(
            "header",
            "The CSV is empty: the first line names the columns (name,email,stylist_id,…).",
        )));
    }
    tracing::info!(
        rows = report.rows,
        created = report.created,
        failed = report.failed,
        "clients imported"
    );
    Ok(Json(report))
}

async fn add(
    state: &AppState,
    user: &User,
    input: ClientInput,
    line: u64,
    report: &mut ImportReport,
) -> Result<(), ApiError> {
    match state.service.create_client(user, input).await {
        Ok(_) => report.created += 1,
        Err(ServiceError::Invalid(errors)) => report.refuse(line, errors.0),
        Err(ServiceError::Forbidden) => report.refuse(
            line,
            vec![FieldError::new(
                "stylist_id",
                "Your role does not allow adding clients to this stylist's book.",
            )],
        ),
        Err(ServiceError::NotFound | ServiceError::Conflict(_)) => report.refuse(
            line,
            vec![FieldError::new("row", "This row could not be added.")],
        ),
        // Rows before this one are in; the caller sees the failure and retries the rest.
        Err(ServiceError::Unavailable) => {
            return Err(ApiError::Store(store::StoreError::Cancelled));
        }
    }
    Ok(())
}

/// Splits the streamed body into records: lines, except that a CSV field in quotes may
/// span lines. Each record comes with the line it starts on.
struct Reader {
    format: Format,
    pending: Vec<u8>,
    /// The line the first pending byte is on.
    record_start: u64,
}

impl Reader {
    fn new(format: Format) -> Self {
        Self {
            format,
            pending: Vec::new(),
            record_start: 1,
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<(u64, String)>, String> {
        self.pending.extend_from_slice(chunk);
        let mut records = Vec::new();
        let mut consumed = 0;
        let mut in_quotes = false;
        let mut scan_from = 0;
        let mut line = self.record_start;
        while let Some(offset) = self.pending[scan_from..].iter().position(|b| *b == b'\n') {
            let end = scan_from + offset;
            if self.format == Format::Csv {
                in_quotes ^= self.pending[scan_from..end]
                    .iter()
                    .filter(|b| **b == b'"')
                    .count()
                    % 2
                    == 1;
            }
            scan_from = end + 1;
            line += 1;
            if in_quotes {
                continue;
            }
            let record = self.text(consumed, end)?;
            records.push((self.record_start, record));
            self.record_start = line;
            consumed = scan_from;
        }
        self.pending.drain(..consumed);
        Ok(records)
    }

    fn finish(&mut self) -> Result<Vec<(u64, String)>, String> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let record = self.text(0, self.pending.len())?;
        self.pending.clear();
        Ok(vec![(self.record_start, record)])
    }

    fn text(&self, from: usize, to: usize) -> Result<String, String> {
        let bytes = &self.pending[from..to];
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("line {} is not UTF-8 text", self.record_start))
    }
}

/// The fields of one CSV record (RFC 4180: commas, quotes, doubled quotes).
fn split_csv(record: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Email,
    StylistId,
    Status,
    SignedUpOn,
    EmailOptIn,
    Styles,
    Budget,
    StyleNotes,
    Top,
    Bottom,
    Dress,
    Shoe,
}

const COLUMNS: [(&str, Column); 13] = [
    ("name", Column::Name),
    ("email", Column::Email),
    ("stylist_id", Column::StylistId),
    ("status", Column::Status),
    ("signed_up_on", Column::SignedUpOn),
    ("email_opt_in", Column::EmailOptIn),
    ("styles", Column::Styles),
    ("budget", Column::Budget),
    ("style_notes", Column::StyleNotes),
    ("top", Column::Top),
    ("bottom", Column::Bottom),
    ("dress", Column::Dress),
    ("shoe", Column::Shoe),
];

/// The header row's columns; an unknown or repeated column, or a missing required one,
/// refuses the whole file before anything is written.
fn header_columns(fields: &[String]) -> Result<Vec<Column>, ApiError> {
    let mut columns = Vec::new();
    let mut errors = domain::ValidationErrors::default();
    for raw in fields {
        let name = raw
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase();
        match COLUMNS.iter().find(|(known, _)| *known == name) {
            Some((_, column)) if columns.contains(column) => errors.0.push(FieldError::new(
                "header",
                format!("The column \"{name}\" appears twice."),
            )),
            Some((_, column)) => columns.push(*column),
            None => errors.0.push(FieldError::new(
                "header",
                format!(
                    "Unknown column \"{name}\"; the columns are {}.",
                    COLUMNS.map(|(n, _)| n).join(", ")
                ),
            )),
        }
    }
    for (name, required) in [
        ("name", Column::Name),
        ("email", Column::Email),
        ("stylist_id", Column::StylistId),
    ] {
        if !columns.contains(&required) {
            errors.0.push(FieldError::new(
                "header",
                format!("The column \"{name}\" is required."),
            ));
        }
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(ApiError::Rejected(errors))
    }
}

fn client_from_csv(columns: &[Column], fields: &[String]) -> Result<ClientInput, Vec<FieldError>> {
    if fields.len() != columns.len() {
        return Err(vec![FieldError::new(
            "row",
            format!(
                "This row has {} fields; the header names {}.",
                fields.len(),
                columns.len()
            ),
        )]);
    }
    let mut input = ClientInput {
        profile: ProfileInput {
            sizes: Sizes::default(),
            ..ProfileInput::default()
        },
        ..ClientInput::default()
    };
    let optional = |raw: &str| Some(raw.trim().to_owned()).filter(|s| !s.is_empty());
    for (column, raw) in columns.iter().zip(fields) {
        match column {
            Column::Name => input.name = raw.clone(),
            Column::Email => input.email = raw.clone(),
            Column::StylistId => input.stylist_id = raw.trim().to_owned(),
            Column::Status => input.status = optional(raw),
            Column::SignedUpOn => input.profile.signed_up_on = optional(raw),
            Column::EmailOptIn => {
                input.profile.email_opt_in = match raw.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "y" => true,
                    "false" | "no" | "0" | "n" | "" => false,
                    other => {
                        return Err(vec![FieldError::new(
                            "email_opt_in",
                            format!("Write true or false (got \"{other}\")."),
                        )]);
                    }
                }
            }
            Column::Styles => {
                input.profile.styles = raw
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            Column::Budget => input.profile.budget = optional(raw),
            Column::StyleNotes => input.profile.style_notes = raw.clone(),
            Column::Top => input.profile.sizes.top = optional(raw),
            Column::Bottom => input.profile.sizes.bottom = optional(raw),
            Column::Dress => input.profile.sizes.dress = optional(raw),
            Column::Shoe => input.profile.sizes.shoe = optional(raw),
        }
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_commas_quotes_and_newlines_inside_quotes() {
        assert_eq!(
            split_csv(r#"Ada,"Lovelace, Countess","She said ""hi""",,x"#),
            ["Ada", "Lovelace, Countess", "She said \"hi\"", "", "x"]
        );
        let mut reader = Reader::new(Format::Csv);
        let first = reader
            .push(b"name,notes\nAda,\"two\nlines\"\r\nBo")
            .unwrap();
        assert_eq!(
            first,
            [
                (1, "name,notes".to_owned()),
                (2, "Ada,\"two\nlines\"".to_owned())
            ]
        );
        let rest = reader.push(b"b,x\n").unwrap();
        assert_eq!(rest, [(4, "Bob,x".to_owned())]);
        assert!(reader.finish().unwrap().is_empty());
    }

    #[test]
    fn json_lines_split_on_every_line_and_the_last_needs_no_newline() {
        let mut reader = Reader::new(Format::JsonLines);
        let records = reader.push(b"{\"a\":\"\\\"\"}\n{\"b\":1}").unwrap();
        assert_eq!(records, [(1, "{\"a\":\"\\\"\"}".to_owned())]);
        assert_eq!(reader.finish().unwrap(), [(2, "{\"b\":1}".to_owned())]);
    }

    #[test]
    fn a_header_with_unknown_or_missing_columns_is_refused_naming_them() {
        let Err(ApiError::Rejected(errors)) =
            header_columns(&["name".into(), "e-mail".into(), "name".into()])
        else {
            panic!("refused")
        };
        let text = errors.to_string();
        assert!(text.contains("Unknown column \"e-mail\""), "{text}");
        assert!(text.contains("appears twice"), "{text}");
        assert!(text.contains("\"email\" is required"), "{text}");
        assert!(text.contains("\"stylist_id\" is required"), "{text}");
    }

    #[test]
    fn a_csv_row_becomes_client_input_and_a_bad_flag_names_its_field() {
        let columns = header_columns(&[
            "name".into(),
            "email".into(),
            "stylist_id".into(),
            "email_opt_in".into(),
            "styles".into(),
            "shoe".into(),
        ])
        .unwrap();
        let row = |opt_in: &str| {
            vec![
                "Ada".to_owned(),
                "ada@example.com".to_owned(),
                " st-1 ".to_owned(),
                opt_in.to_owned(),
                "classic; boho".to_owned(),
                "38".to_owned(),
            ]
        };
        let input = client_from_csv(&columns, &row("yes")).unwrap();
        assert_eq!(input.stylist_id, "st-1");
        assert!(input.profile.email_opt_in);
        assert_eq!(input.profile.styles, ["classic", "boho"]);
        assert_eq!(input.profile.sizes.shoe.as_deref(), Some("38"));
        let errors = client_from_csv(&columns, &row("maybe")).unwrap_err();
        assert_eq!(errors[0].field, "email_opt_in");
        let errors = client_from_csv(&columns, &row("yes")[..3]).unwrap_err();
        assert_eq!(errors[0].field, "row");
    }
}
