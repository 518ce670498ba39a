//! Instants stored identically on both backends.
//!
//! PostgreSQL gets a `timestamptz` (microseconds); SQLite gets fixed-width RFC 3339 text in
//! UTC with exactly six fractional digits, so text order is time order and range filters
//! and `ORDER BY` work on the column as they do on PostgreSQL. Values are truncated to
//! microseconds on construction so a round trip through either backend is exact.

use jiff::{SignedDuration, Timestamp};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(Timestamp);

const PG_EPOCH_UNIX_SECONDS: i64 = 946_684_800;

impl Ts {
    pub fn new(t: Timestamp) -> Ts {
        let micros = t.as_microsecond();
        Ts(Timestamp::from_microsecond(micros).unwrap_or(t))
    }

    pub fn get(self) -> Timestamp {
        self.0
    }

    /// `2026-11-23T07:13:17.123456Z`: the SQLite representation. Digits written into a
    /// fixed buffer: every stored instant, every JSON timestamp and every bound one goes
    /// through here (with `format!`, 3.9 % of the capture writer's time).
    pub fn to_text(self) -> String {
        let t = jiff::tz::Offset::UTC.to_datetime(self.0);
        let Ok(year) = u32::try_from(t.year()) else {
            // Before the year 0 (jiff reaches -9999): the general path, as written before.
            return format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.subsec_nanosecond() / 1000
            );
        };
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let fields = [
            (0..4, year),
            (5..7, t.month() as u32),
            (8..10, t.day() as u32),
            (11..13, t.hour() as u32),
            (14..16, t.minute() as u32),
            (17..19, t.second() as u32),
            (20..26, t.subsec_nanosecond() as u32 / 1000),
        ];
        for (at, mut v) in fields {
            for d in b[at].iter_mut().rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        b.iter().map(|&c| char::from(c)).collect()
    }

    pub fn parse(s: &str) -> Result<Ts, jiff::Error> {
        s.parse::<Timestamp>().map(Ts::new)
    }

    pub fn add_secs(self, secs: i64) -> Ts {
        Ts::new(self.0.checked_add(SignedDuration::from_secs(secs)).unwrap_or(self.0))
    }
}

impl From<Timestamp> for Ts {
    fn from(t: Timestamp) -> Ts {
        Ts::new(t)
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl serde::Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Ts {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 instant in UTC with microseconds"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Ts {}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <str as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <str as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.to_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Ts::parse(text)?)
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("timestamptz")
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // Binary timestamptz is microseconds since 2000-01-01T00:00:00Z.
        let micros = self.0.as_microsecond() - PG_EPOCH_UNIX_SECONDS * 1_000_000;
        Encode::<Postgres>::encode(micros, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let micros: i64 = Decode::<Postgres>::decode(value)?;
                Ok(Ts(Timestamp::from_microsecond(micros + PG_EPOCH_UNIX_SECONDS * 1_000_000)?))
            }
            PgValueFormat::Text => {
                // Text format is only used by the simple query protocol; PostgreSQL writes
                // `2026-11-23 07:13:17.123456+00`.
                let s = value.as_str()?;
                let fixed = s.replacen(' ', "T", 1);
                let fixed = if fixed.ends_with("+00") { format!("{fixed}:00") } else { fixed };
                Ok(Ts::parse(&fixed)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_fixed_width_and_sortable() {
        let a = Ts::new("2026-01-02T03:04:05Z".parse().unwrap());
        let b = Ts::new("2026-01-02T03:04:05.5Z".parse().unwrap());
        assert_eq!(a.to_text(), "2026-01-02T03:04:05.000000Z");
        assert_eq!(b.to_text(), "2026-01-02T03:04:05.500000Z");
        assert!(a.to_text() < b.to_text());
        assert_eq!(Ts::parse(&b.to_text()).unwrap(), b);
    }
}
