//! Reading and writing spreadsheets: CSV (UTF-8, or GB18030 as Chinese Excel saves it) and
//! XLSX. Pure conversions between bytes and [`Table`]s; no IO.

use domain::import::Table;

#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("the file is not valid CSV: {0}")]
    Csv(String),
    #[error("the file is not a readable XLSX workbook: {0}")]
    Xlsx(String),
    #[error("the file has no header row")]
    Empty,
}

/// Reads a UTF-8 CSV file record by record without holding it: `row` gets each record's
/// sheet row number (the header is row 1) and its cells, and returns false to stop reading
/// (a header that cannot be used). `Ok(false)` when the text is not
/// UTF-8 (Chinese Excel's GB18030): the caller reads the whole file with [`read`] instead.
pub fn stream_csv(
    reader: impl std::io::Read,
    mut row: impl FnMut(usize, &csv::StringRecord) -> bool,
) -> Result<bool, SheetError> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut rec = csv::StringRecord::new();
    let mut n = 0;
    loop {
        match r.read_record(&mut rec) {
            Ok(false) if n == 0 => return Err(SheetError::Empty),
            Ok(false) => return Ok(true),
            Ok(true) => {
                n += 1;
                if n == 1 {
                    // Excel's byte-order mark before the first header.
                    let first = rec.get(0).unwrap_or_default();
                    if let Some(rest) = first.strip_prefix('\u{feff}') {
                        let mut cells: Vec<String> = rec.iter().map(str::to_string).collect();
                        cells[0] = rest.to_string();
                        rec = csv::StringRecord::from(cells);
                    }
                }
                if !row(n, &rec) {
                    return Ok(true);
                }
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => return Ok(false),
            Err(e) => return Err(SheetError::Csv(e.to_string())),
        }
    }
}

/// Reads CSV or XLSX, told apart by content (an XLSX file is a ZIP archive).
pub fn read(bytes: &[u8]) -> Result<Table, SheetError> {
    if bytes.starts_with(b"PK\x03\x04") { read_xlsx(bytes) } else { read_csv(bytes) }
}

pub fn read_csv(bytes: &[u8]) -> Result<Table, SheetError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        // Not UTF-8: Excel on a Chinese Windows saves CSV in GBK (a subset of GB18030).
        Err(_) => encoding_rs::GB18030.decode(bytes).0,
    };
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut header = csv::StringRecord::new();
    let headers: Vec<String> = match r.read_record(&mut header) {
        Ok(true) => header.iter().map(|s| s.trim().to_string()).collect(),
        Ok(false) => return Err(SheetError::Empty),
        Err(e) => return Err(SheetError::Csv(e.to_string())),
    };
    let body = &text[usize::try_from(r.position().byte()).unwrap_or(text.len())..];
    // Without a quote in the file every line break ends a record: a large file is read in
    // parts, one per core, split at line breaks (a million leads: 1.2 s on one core).
    let parts: Vec<&str> = if body.len() >= SPLIT_FROM && !body.contains('"') {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut parts = Vec::with_capacity(n);
        let mut rest = body;
        for k in (1..n).rev() {
            let at = rest.len() - rest.len() * k / (k + 1);
            let Some(nl) = rest[at..].find('\n') else { break };
            let (part, tail) = rest.split_at(at + nl + 1);
            parts.push(part);
            rest = tail;
        }
        parts.push(rest);
        parts
    } else {
        vec![body]
    };
    let read = |part: &&str| -> Result<Vec<Vec<String>>, SheetError> {
        let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(part.as_bytes());
        r.records()
            .map(|rec| {
                rec.map(|rec| rec.iter().map(str::to_string).collect()).map_err(|e| SheetError::Csv(e.to_string()))
            })
            .collect()
    };
    let mut rows = Vec::new();
    for part in domain::par::each(&parts, read) {
        rows.extend(part?);
    }
    Ok(Table { headers, rows })
}

/// Bytes of CSV from which `read_csv` reads in parts.
const SPLIT_FROM: usize = 1 << 20;

pub fn read_xlsx(bytes: &[u8]) -> Result<Table, SheetError> {
    use calamine::{Reader, Xlsx};
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let range = wb.worksheet_range_at(0).ok_or(SheetError::Empty)?.map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let mut rows = range.rows().map(|r| {
        r.iter()
            .map(|c| match c {
                calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
                other => other.to_string(),
            })
            .collect::<Vec<String>>()
    });
    let headers = rows.next().ok_or(SheetError::Empty)?.into_iter().map(|h| h.trim().to_string()).collect();
    Ok(Table { headers, rows: rows.collect() })
}

/// CSV with a UTF-8 byte-order mark, so spreadsheet programs read Chinese text correctly.
pub fn write_csv(t: &Table) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(b"\xef\xbb\xbf".to_vec());
    let _ = w.write_record(&t.headers);
    for r in &t.rows {
        let _ = w.write_record(r);
    }
    w.into_inner().unwrap_or_default()
}

pub fn write_xlsx(t: &Table, sheet: &str) -> Result<Vec<u8>, SheetError> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (c, h) in t.headers.iter().enumerate() {
        let col = u16::try_from(c).unwrap_or(u16::MAX);
        ws.write_string_with_format(0, col, h, &bold).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    }
    for (r, row) in t.rows.iter().enumerate() {
        let line = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, v) in row.iter().enumerate() {
            let col = u16::try_from(c).unwrap_or(u16::MAX);
            ws.write_string(line, col, v).map_err(|e| SheetError::Xlsx(e.to_string()))?;
        }
    }
    wb.save_to_buffer().map_err(|e| SheetError::Xlsx(e.to_string()))
}
