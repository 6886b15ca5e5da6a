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
pub use domain::api::ImportReport;
use domain::profile::{ProfileInput, Sizes};
use domain::user::User;
use domain::{ClientInput, FieldError};
use futures_util::StreamExt;

/// The largest import body accepted.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

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
/// lines (one `ClientInput` per line). Up to 64 MiB. CSV is RFC 4180: a field holding a
/// comma, quote or line break is quoted and a quote inside it doubled; a quote inside an
/// unquoted field (`O"Brien`) is read as itself. A failed row is reported by the line it
/// starts on.
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
    let mut rows = Rows::new(format_of(&headers)?);
    let mut stream = body.into_data_stream();
    let mut report = ImportReport::default();
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
        let parsed = match chunk {
            Some(chunk) => rows.push(&chunk)?,
            None => rows.finish()?,
        };
        for (line, input) in parsed {
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
        Err(ServiceError::NotFound | ServiceError::Conflict(_) | ServiceError::Refused { .. }) => {
            report.refuse(
                line,
                vec![FieldError::new("row", "This row could not be added.")],
            )
        }
        // Rows before this one are in; the caller sees the failure and retries the rest.
        Err(ServiceError::Unavailable) => {
            return Err(ApiError::Store(ports::StoreError::Cancelled));
        }
    }
    Ok(())
}

/// A data row of the body: the line it starts on, and the client it describes or every
/// field at fault.
type Row = (u64, Result<ClientInput, Vec<FieldError>>);

/// Turns the body, chunk by chunk, into rows.
enum Rows {
    Csv {
        // Boxed: the CSV parser's state is large beside the JSON lines reader's.
        records: Box<CsvRecords>,
        /// The header's columns, once it has been read.
        columns: Option<Vec<Column>>,
    },
    JsonLines(JsonLines),
}

impl Rows {
    fn new(format: Format) -> Self {
        match format {
            Format::Csv => Rows::Csv {
                records: Box::default(),
                columns: None,
            },
            Format::JsonLines => Rows::JsonLines(JsonLines::default()),
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Row>, ApiError> {
        match self {
            Rows::Csv { records, columns } => {
                let mut read = Vec::new();
                records.push(chunk, &mut read).map_err(ApiError::BadBody)?;
                csv_rows(columns, read)
            }
            Rows::JsonLines(lines) => {
                let read = lines.push(chunk).map_err(ApiError::BadBody)?;
                Ok(json_rows(read))
            }
        }
    }

    /// The rows the end of the body completes; a CSV without even a header is refused.
    fn finish(&mut self) -> Result<Vec<Row>, ApiError> {
        match self {
            Rows::Csv { records, columns } => {
                let mut read = Vec::new();
                records.finish(&mut read).map_err(ApiError::BadBody)?;
                let rows = csv_rows(columns, read)?;
                if columns.is_none() {
                    return Err(ApiError::Rejected(domain::ValidationErrors::single(
                        "header",
                        "The CSV is empty: the first line names the columns (name,email,stylist_id,…).",
                    )));
                }
                Ok(rows)
            }
            Rows::JsonLines(lines) => {
                let read = lines.finish().map_err(ApiError::BadBody)?;
                Ok(json_rows(read))
            }
        }
    }
}

/// The first record is the header; every later one a row. A record of nothing but blanks
/// (a line of spaces) is no row.
fn csv_rows(
    columns: &mut Option<Vec<Column>>,
    records: Vec<CsvRecord>,
) -> Result<Vec<Row>, ApiError> {
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        if let [only] = record.fields.as_slice()
            && only.trim().is_empty()
        {
            continue;
        }
        match columns {
            None => *columns = Some(header_columns(&record.fields)?),
            Some(columns) => rows.push((record.line, client_from_csv(columns, &record.fields))),
        }
    }
    Ok(rows)
}

fn json_rows(lines: Vec<(u64, String)>) -> Vec<Row> {
    lines
        .into_iter()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(line, text)| {
            let input = serde_json::from_str::<ClientInput>(&text).map_err(|e| {
                let message = e.to_string();
                vec![FieldError::new(
                    field_of(&message).unwrap_or_else(|| "row".to_owned()),
                    message,
                )]
            });
            (line, input)
        })
        .collect()
}

/// One CSV record: its fields, unquoted, and the line it starts on (1 is the body's first
/// line; a quoted field spanning lines makes the next record start further down).
#[derive(Debug, PartialEq, Eq)]
struct CsvRecord {
    line: u64,
    fields: Vec<String>,
}

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads CSV records (RFC 4180, by `csv_core`) from a body that arrives in chunks of any
/// size, keeping only the record being read.
///
/// What the RFC leaves open, read the way spreadsheets write and read it:
/// - a field is quoted only if it starts with a quote; a quote anywhere else in an
///   unquoted field is that character (`O"Brien` is the text `O"Brien`), so it cannot
///   swallow the lines after it;
/// - text after a quoted field's closing quote is kept (`"O"Brien` reads `OBrien`);
/// - a quote that opens a field and never closes runs to the end of the body (there is no
///   telling where it was meant to end); its row then fails with a hint (see
///   [`client_from_csv`]);
/// - a line ends with LF, CRLF or CR (for the line numbers, inside quotes too); empty
///   lines are skipped; a UTF-8 byte order mark at the start is dropped.
struct CsvRecords {
    parser: csv_core::Reader,
    /// The current record's fields, back to back, and where each ends in it.
    fields: Vec<u8>,
    ends: Vec<usize>,
    /// How much of `fields` and `ends` the current record has filled.
    filled: usize,
    ended: usize,
    /// The line the next byte read is on.
    line: u64,
    /// The last byte read was a CR, so an LF next ends no further line.
    after_cr: bool,
    /// The line the current record starts on, once its first byte has been read.
    record_line: Option<u64>,
    /// The body's first bytes while they could still be the start of a byte order mark
    /// (a chunk may end inside it); `None` once that is decided.
    head: Option<Vec<u8>>,
}

impl Default for CsvRecords {
    fn default() -> Self {
        Self {
            parser: csv_core::Reader::new(),
            fields: vec![0; 4 * 1024],
            ends: vec![0; 16],
            filled: 0,
            ended: 0,
            line: 1,
            after_cr: false,
            record_line: None,
            head: Some(Vec::new()),
        }
    }
}

impl CsvRecords {
    /// Adds to `out` the records `chunk` completes.
    fn push(&mut self, chunk: &[u8], out: &mut Vec<CsvRecord>) -> Result<(), String> {
        let Some(mut head) = self.head.take() else {
            return self.read(chunk, out);
        };
        head.extend_from_slice(chunk);
        if head.len() < UTF8_BOM.len() && UTF8_BOM.starts_with(&head) {
            self.head = Some(head);
            return Ok(());
        }
        let body = head.strip_prefix(UTF8_BOM).unwrap_or(&head);
        if body.is_empty() {
            return Ok(());
        }
        self.read(body, out)
    }

    /// Adds to `out` the last record, which the end of the body completes.
    fn finish(&mut self, out: &mut Vec<CsvRecord>) -> Result<(), String> {
        if let Some(head) = self.head.take()
            && !head.is_empty()
        {
            self.read(&head, out)?;
        }
        // An empty input is how csv_core is told the body has ended.
        self.read(&[], out)
    }

    fn read(&mut self, mut input: &[u8], out: &mut Vec<CsvRecord>) -> Result<(), String> {
        use csv_core::ReadRecordResult;
        let at_end = input.is_empty();
        loop {
            if self.record_line.is_none() {
                // csv_core skips empty lines too, but skipping them here is what tells
                // which line the next record starts on.
                let blank = input
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
                self.count_lines(&input[..blank]);
                input = &input[blank..];
                if input.is_empty() && !at_end {
                    return Ok(());
                }
                if !input.is_empty() {
                    self.record_line = Some(self.line);
                }
            }
            let (result, read, written, ended) = self.parser.read_record(
                input,
                &mut self.fields[self.filled..],
                &mut self.ends[self.ended..],
            );
            self.count_lines(&input[..read]);
            input = &input[read..];
            self.filled += written;
            self.ended += ended;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return Ok(()),
                ReadRecordResult::OutputFull => {
                    let larger = self.fields.len() * 2;
                    self.fields.resize(larger, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let larger = self.ends.len() * 2;
                    self.ends.resize(larger, 0);
                }
                ReadRecordResult::Record => out.push(self.take_record()?),
            }
        }
    }

    fn count_lines(&mut self, bytes: &[u8]) {
        for byte in bytes {
            if *byte == b'\r' || (*byte == b'\n' && !self.after_cr) {
                self.line += 1;
            }
            self.after_cr = *byte == b'\r';
        }
    }

    fn take_record(&mut self) -> Result<CsvRecord, String> {
        let line = self.record_line.take().unwrap_or(self.line);
        let mut fields = Vec::with_capacity(self.ended);
        let mut start = 0;
        for &end in &self.ends[..self.ended] {
            let field = std::str::from_utf8(&self.fields[start..end])
                .map_err(|_| format!("line {line} is not UTF-8 text"))?;
            fields.push(field.to_owned());
            start = end;
        }
        self.filled = 0;
        self.ended = 0;
        Ok(CsvRecord { line, fields })
    }
}

/// Splits the streamed body into JSON lines, each with its line number (a JSON text holds
/// no raw line break, so every LF ends one).
#[derive(Default)]
struct JsonLines {
    pending: Vec<u8>,
    /// Lines split off so far.
    lines: u64,
}

impl JsonLines {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<(u64, String)>, String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        let mut consumed = 0;
        while let Some(offset) = self.pending[consumed..].iter().position(|b| *b == b'\n') {
            let end = consumed + offset;
            lines.push(self.text(consumed, end)?);
            consumed = end + 1;
        }
        self.pending.drain(..consumed);
        Ok(lines)
    }

    fn finish(&mut self) -> Result<Vec<(u64, String)>, String> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let last = self.text(0, self.pending.len())?;
        self.pending.clear();
        Ok(vec![last])
    }

    fn text(&mut self, from: usize, to: usize) -> Result<(u64, String), String> {
        self.lines += 1;
        let line = self.lines;
        let bytes = &self.pending[from..to];
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("line {line} is not UTF-8 text"))?;
        Ok((line, text))
    }
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
        // A quote that opens a field and is never closed runs on over the lines below,
        // which then look like one long row: say so, or the count alone baffles.
        let hint = if fields.iter().any(|f| f.contains('\n')) {
            " A field here starts with a quote (\") that closes lines later or never; quote the whole field and double any quote inside it (\"\")."
        } else {
            ""
        };
        return Err(vec![FieldError::new(
            "row",
            format!(
                "This row has {} fields; the header names {}.{hint}",
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

    /// The records of `body` fed in chunks of `size` bytes, as (line, fields).
    fn records_in_chunks(body: &[u8], size: usize) -> Result<Vec<(u64, Vec<String>)>, String> {
        let mut reader = CsvRecords::default();
        let mut out = Vec::new();
        for chunk in body.chunks(size) {
            reader.push(chunk, &mut out)?;
        }
        reader.finish(&mut out)?;
        Ok(out.into_iter().map(|r| (r.line, r.fields)).collect())
    }

    /// The records of `body`, checked to be the same however the body is cut into chunks.
    fn records(body: &str) -> Vec<(u64, Vec<String>)> {
        let body = body.as_bytes();
        let whole = records_in_chunks(body, body.len().max(1)).unwrap();
        for size in [1, 2, 3, 5, 64] {
            assert_eq!(
                records_in_chunks(body, size).unwrap(),
                whole,
                "in chunks of {size} bytes"
            );
        }
        whole
    }

    fn row(line: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (line, fields.iter().map(|f| (*f).to_owned()).collect())
    }

    #[test]
    fn quoted_fields_keep_their_commas_and_doubled_quotes_become_one() {
        assert_eq!(
            records(r#"Ada,"Lovelace, Countess","She said ""hi""",,x"#),
            [row(
                1,
                &["Ada", "Lovelace, Countess", "She said \"hi\"", "", "x"]
            )]
        );
        assert_eq!(records("\"\"\"\",\"\"\"\"\"\""), [row(1, &["\"", "\"\""])]);
    }

    #[test]
    fn lf_crlf_and_cr_all_end_a_record_with_or_without_a_final_line_end() {
        let expected = [
            row(1, &["a", "b"]),
            row(2, &["c", "d"]),
            row(3, &["e", "f"]),
        ];
        assert_eq!(records("a,b\r\nc,d\ne,f"), expected);
        assert_eq!(records("a,b\r\nc,d\ne,f\n"), expected);
        assert_eq!(records("a,b\r\nc,d\ne,f\r\n"), expected);
        assert_eq!(
            records("a,b\rc,d"),
            [row(1, &["a", "b"]), row(2, &["c", "d"])]
        );
        assert_eq!(
            records("a\r\rb\r\n\"c\rd\"\re"),
            [
                row(1, &["a"]),
                row(3, &["b"]),
                row(4, &["c\rd"]),
                row(6, &["e"])
            ]
        );
        assert_eq!(records("a,\n"), [row(1, &["a", ""])]);
    }

    #[test]
    fn a_quoted_field_spans_lines_and_the_next_record_starts_on_its_own_line() {
        assert_eq!(
            records("name,notes\nAda,\"two\nlines\"\r\nBob,\"three\r\nmore\nlines\"\nCy,x"),
            [
                row(1, &["name", "notes"]),
                row(2, &["Ada", "two\nlines"]),
                row(4, &["Bob", "three\r\nmore\nlines"]),
                row(7, &["Cy", "x"]),
            ]
        );
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_text_and_the_next_lines_stay_records() {
        assert_eq!(
            records("name,email\nMaeve O\"Brien,m@example.com\nAda,a@example.com\nBo\"\"b,b@x\n"),
            [
                row(1, &["name", "email"]),
                row(2, &["Maeve O\"Brien", "m@example.com"]),
                row(3, &["Ada", "a@example.com"]),
                row(4, &["Bo\"\"b", "b@x"]),
            ]
        );
        // Text after a closing quote is kept rather than refused.
        assert_eq!(records("\"O\"Brien,x\n"), [row(1, &["OBrien", "x"])]);
    }

    #[test]
    fn empty_lines_are_skipped_and_do_not_shift_line_numbers() {
        assert_eq!(
            records("\n\na,b\n\r\n\nc,d\n\n"),
            [row(3, &["a", "b"]), row(6, &["c", "d"])]
        );
        assert!(records("").is_empty());
        assert!(records("\r\n\n").is_empty());
    }

    #[test]
    fn a_byte_order_mark_is_dropped_even_when_a_chunk_ends_inside_it() {
        assert_eq!(
            records("\u{feff}\"name\",email\nAda,a@x\n"),
            [row(1, &["name", "email"]), row(2, &["Ada", "a@x"])]
        );
        assert!(records("\u{feff}").is_empty());
        // Only at the start: anywhere else it is text.
        assert_eq!(
            records("a\n\u{feff}b"),
            [row(1, &["a"]), row(2, &["\u{feff}b"])]
        );
    }

    #[test]
    fn non_ascii_text_survives_chunks_that_cut_a_character_in_two() {
        assert_eq!(
            records("Lucía Ferreira,\"Zoë, 🌸\"\nНадя,東京\n"),
            [
                row(1, &["Lucía Ferreira", "Zoë, 🌸"]),
                row(2, &["Надя", "東京"])
            ]
        );
    }

    #[test]
    fn long_fields_and_many_fields_grow_the_buffers() {
        let long = "x".repeat(10_000);
        let many = vec!["f"; 100].join(",");
        let body = format!("\"{long}\",{long}\n{many}\n");
        let read = records(&body);
        assert_eq!(read[0], row(1, &[&long, &long]));
        assert_eq!(read[1].1.len(), 100);
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_naming_its_line() {
        let error = records_in_chunks(b"name\nok\nbad \xff\n", 4).unwrap_err();
        assert_eq!(error, "line 3 is not UTF-8 text");
        // The start of a byte order mark that is not one is not text either.
        let error = records_in_chunks(b"\xef\xbbname\n", 1).unwrap_err();
        assert_eq!(error, "line 1 is not UTF-8 text");
    }

    #[test]
    fn json_lines_split_on_every_line_and_the_last_needs_no_newline() {
        let mut reader = JsonLines::default();
        let records = reader.push(b"{\"a\":\"\\\"\"}\r\n{\"b\":1}").unwrap();
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
        assert!(
            !errors[0].message.contains("quote"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_row_a_never_closed_quote_ran_on_is_refused_with_a_hint_about_quotes() {
        let mut rows = Rows::new(Format::Csv);
        let mut read = rows
            .push(b"name,email,stylist_id\n\"Ada,ada@example.com,st-1\nBo,bo@example.com,st-1\n")
            .unwrap();
        read.extend(rows.finish().unwrap());
        let [(2, Err(errors))] = read.as_slice() else {
            panic!("one refused row on line 2: {read:?}")
        };
        assert_eq!(errors[0].field, "row");
        assert!(
            errors[0].message.contains("has 1 fields"),
            "{}",
            errors[0].message
        );
        assert!(errors[0].message.contains("quote"), "{}", errors[0].message);
    }

    #[test]
    fn columns_may_come_in_any_order_and_a_blank_line_is_no_row() {
        let mut rows = Rows::new(Format::Csv);
        let mut read = rows
            .push(b"STYLIST_ID, Email ,name\n   \nst-1,ada@example.com,Ada\n")
            .unwrap();
        read.extend(rows.finish().unwrap());
        let [(3, Ok(input))] = read.as_slice() else {
            panic!("one row on line 3: {read:?}")
        };
        assert_eq!(
            (
                input.name.as_str(),
                input.email.as_str(),
                input.stylist_id.as_str()
            ),
            ("Ada", "ada@example.com", "st-1")
        );
    }

    #[test]
    fn a_csv_body_without_a_header_is_refused() {
        let mut rows = Rows::new(Format::Csv);
        assert!(rows.push(b"\xef\xbb\xbf\r\n\n").unwrap().is_empty());
        let Err(ApiError::Rejected(errors)) = rows.finish() else {
            panic!("refused")
        };
        assert!(errors.to_string().contains("The CSV is empty"), "{errors}");
    }
}
