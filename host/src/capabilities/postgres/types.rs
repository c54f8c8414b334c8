//! Conversions between the WIT's `parameter-value` / `db-value` and Postgres,
//! driven by the types the server reports for each parameter and column.
//!
//! Parameters are bound as the type the server inferred for them, so a value
//! may widen losslessly (an `int32` into a `bigint` parameter) but never
//! narrows or changes meaning; anything else is `bad-parameter` with a hint.

use std::collections::Bound;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde_json::value::RawValue;
use sqlx::postgres::types::{PgInterval, PgRange};
use sqlx::postgres::{PgArguments, PgRow, PgTypeInfo};
use sqlx::types::Json;
use sqlx::{Arguments, Row, TypeInfo, ValueRef};

use crate::spin_bindings::spin::postgres::postgres::{
    Column, DbDataType, DbValue, Interval, ParameterValue, RangeBoundKind,
};

/// The WIT data type of a Postgres type.
pub fn data_type(ty: &PgTypeInfo) -> DbDataType {
    match ty.name() {
        "BOOL" => DbDataType::Boolean,
        "\"CHAR\"" => DbDataType::Int8,
        "INT2" => DbDataType::Int16,
        "INT4" => DbDataType::Int32,
        "INT8" => DbDataType::Int64,
        "FLOAT4" => DbDataType::Floating32,
        "FLOAT8" => DbDataType::Floating64,
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" => DbDataType::Str,
        "BYTEA" => DbDataType::Binary,
        "DATE" => DbDataType::Date,
        "TIME" => DbDataType::Time,
        "TIMESTAMP" => DbDataType::Datetime,
        "TIMESTAMPTZ" => DbDataType::Timestamp,
        "UUID" => DbDataType::Uuid,
        "JSON" | "JSONB" => DbDataType::Jsonb,
        "NUMERIC" => DbDataType::Decimal,
        "INT4RANGE" => DbDataType::RangeInt32,
        "INT8RANGE" => DbDataType::RangeInt64,
        "NUMRANGE" => DbDataType::RangeDecimal,
        "INT4[]" => DbDataType::ArrayInt32,
        "INT8[]" => DbDataType::ArrayInt64,
        "NUMERIC[]" => DbDataType::ArrayDecimal,
        "TEXT[]" | "VARCHAR[]" | "CHAR[]" | "NAME[]" => DbDataType::ArrayStr,
        "INTERVAL" => DbDataType::Interval,
        other => DbDataType::Other(other.to_ascii_lowercase()),
    }
}

pub fn columns(columns: &[sqlx::postgres::PgColumn]) -> Vec<Column> {
    use sqlx::Column as _;
    columns
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            data_type: data_type(c.type_info()),
        })
        .collect()
}

/// Adds one parameter, converted to the type the server expects for it.
/// `index` is 1-based, for messages.
pub fn bind(
    arguments: &mut PgArguments,
    index: usize,
    expected: &PgTypeInfo,
    value: ParameterValue,
) -> Result<(), String> {
    use ParameterValue as P;
    let expected_name = expected.name();
    let mismatch = |value: &ParameterValue| {
        format!(
            "parameter ${index}: cannot bind {} to a {expected_name} parameter; cast in SQL (e.g. ${index}::{}) or send the matching type",
            variant_name(value),
            cast_hint(value)
        )
    };
    let add = |result: Result<(), sqlx::error::BoxDynError>| {
        result.map_err(|e| format!("parameter ${index}: {e}"))
    };
    match (expected_name, value) {
        (_, P::DbNull) => add(arguments.add(None::<i32>)),
        ("BOOL", P::Boolean(v)) => add(arguments.add(v)),
        ("\"CHAR\"", P::Int8(v)) => add(arguments.add(v)),
        ("INT2", P::Int8(v)) => add(arguments.add(i16::from(v))),
        ("INT2", P::Int16(v)) => add(arguments.add(v)),
        ("INT4", P::Int8(v)) => add(arguments.add(i32::from(v))),
        ("INT4", P::Int16(v)) => add(arguments.add(i32::from(v))),
        ("INT4", P::Int32(v)) => add(arguments.add(v)),
        ("INT8", P::Int8(v)) => add(arguments.add(i64::from(v))),
        ("INT8", P::Int16(v)) => add(arguments.add(i64::from(v))),
        ("INT8", P::Int32(v)) => add(arguments.add(i64::from(v))),
        ("INT8", P::Int64(v)) => add(arguments.add(v)),
        ("FLOAT4", P::Floating32(v)) => add(arguments.add(v)),
        ("FLOAT8", P::Floating32(v)) => add(arguments.add(f64::from(v))),
        ("FLOAT8", P::Floating64(v)) => add(arguments.add(v)),
        ("TEXT" | "VARCHAR" | "CHAR" | "NAME" | "UNKNOWN", P::Str(v)) => add(arguments.add(v)),
        ("BYTEA", P::Binary(v)) => add(arguments.add(v)),
        ("DATE", P::Date(v)) => {
            let date = date(v).ok_or_else(|| format!("parameter ${index}: invalid date {v:?}"))?;
            add(arguments.add(date))
        }
        ("TIME", P::Time(v)) => {
            let time = time(v).ok_or_else(|| format!("parameter ${index}: invalid time {v:?}"))?;
            add(arguments.add(time))
        }
        ("TIMESTAMP", P::Datetime(v)) => {
            let datetime =
                datetime(v).ok_or_else(|| format!("parameter ${index}: invalid datetime {v:?}"))?;
            add(arguments.add(datetime))
        }
        ("TIMESTAMPTZ", P::Timestamp(seconds)) => {
            let instant = DateTime::<Utc>::from_timestamp(seconds, 0)
                .ok_or_else(|| format!("parameter ${index}: invalid epoch timestamp {seconds}"))?;
            add(arguments.add(instant))
        }
        ("TIMESTAMPTZ", P::Datetime(v)) => {
            let datetime =
                datetime(v).ok_or_else(|| format!("parameter ${index}: invalid datetime {v:?}"))?;
            add(arguments.add(datetime.and_utc()))
        }
        ("UUID", P::Uuid(v) | P::Str(v)) => {
            let uuid = uuid::Uuid::parse_str(&v)
                .map_err(|e| format!("parameter ${index}: invalid UUID {v:?}: {e}"))?;
            add(arguments.add(uuid))
        }
        ("JSON" | "JSONB", P::Jsonb(bytes)) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("parameter ${index}: JSON is not UTF-8"))?;
            let raw = RawValue::from_string(text)
                .map_err(|e| format!("parameter ${index}: invalid JSON: {e}"))?;
            add(arguments.add(Json(raw)))
        }
        ("NUMERIC", P::Decimal(v)) => add(arguments.add(decimal(index, &v)?)),
        ("NUMERIC", P::Int8(v)) => add(arguments.add(BigDecimal::from(v))),
        ("NUMERIC", P::Int16(v)) => add(arguments.add(BigDecimal::from(v))),
        ("NUMERIC", P::Int32(v)) => add(arguments.add(BigDecimal::from(v))),
        ("NUMERIC", P::Int64(v)) => add(arguments.add(BigDecimal::from(v))),
        ("INT4RANGE", P::RangeInt32((lower, upper))) => {
            add(arguments.add(range(lower, upper, Ok)?))
        }
        ("INT8RANGE", P::RangeInt64((lower, upper))) => {
            add(arguments.add(range(lower, upper, Ok)?))
        }
        ("INT8RANGE", P::RangeInt32((lower, upper))) => {
            add(arguments.add(range(lower, upper, |v| Ok(i64::from(v)))?))
        }
        ("NUMRANGE", P::RangeDecimal((lower, upper))) => {
            add(arguments.add(range(lower, upper, |v: String| decimal(index, &v))?))
        }
        ("INT4[]", P::ArrayInt32(v)) => add(arguments.add(v)),
        ("INT8[]", P::ArrayInt64(v)) => add(arguments.add(v)),
        ("INT8[]", P::ArrayInt32(v)) => {
            let widened: Vec<Option<i64>> = v.into_iter().map(|x| x.map(i64::from)).collect();
            add(arguments.add(widened))
        }
        ("NUMERIC[]", P::ArrayDecimal(v)) => {
            let values = v
                .into_iter()
                .map(|x| x.map(|s| decimal(index, &s)).transpose())
                .collect::<Result<Vec<Option<BigDecimal>>, String>>()?;
            add(arguments.add(values))
        }
        ("TEXT[]", P::ArrayStr(v)) => add(arguments.add(v)),
        ("INTERVAL", P::Interval(v)) => add(arguments.add(PgInterval {
            months: v.months,
            days: v.days,
            microseconds: v.micros,
        })),
        (_, value) => Err(mismatch(&value)),
    }
}

fn decimal(index: usize, text: &str) -> Result<BigDecimal, String> {
    BigDecimal::from_str(text.trim())
        .map_err(|e| format!("parameter ${index}: invalid decimal {text:?}: {e}"))
}

fn range<T, U>(
    lower: Option<(T, RangeBoundKind)>,
    upper: Option<(T, RangeBoundKind)>,
    convert: impl Fn(T) -> Result<U, String>,
) -> Result<PgRange<U>, String> {
    let bound = |b: Option<(T, RangeBoundKind)>| -> Result<Bound<U>, String> {
        Ok(match b {
            None => Bound::Unbounded,
            Some((v, RangeBoundKind::Inclusive)) => Bound::Included(convert(v)?),
            Some((v, RangeBoundKind::Exclusive)) => Bound::Excluded(convert(v)?),
        })
    };
    Ok(PgRange {
        start: bound(lower)?,
        end: bound(upper)?,
    })
}

fn date((year, month, day): (i32, u8, u8)) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month.into(), day.into())
}

fn time((hour, minute, second, nanos): (u8, u8, u8, u32)) -> Option<NaiveTime> {
    NaiveTime::from_hms_nano_opt(hour.into(), minute.into(), second.into(), nanos)
}

fn datetime(
    (year, month, day, hour, minute, second, nanos): (i32, u8, u8, u8, u8, u8, u32),
) -> Option<NaiveDateTime> {
    Some(date((year, month, day))?.and_time(time((hour, minute, second, nanos))?))
}

fn variant_name(value: &ParameterValue) -> &'static str {
    use ParameterValue as P;
    match value {
        P::Boolean(_) => "boolean",
        P::Int8(_) => "int8",
        P::Int16(_) => "int16",
        P::Int32(_) => "int32",
        P::Int64(_) => "int64",
        P::Floating32(_) => "floating32",
        P::Floating64(_) => "floating64",
        P::Str(_) => "str",
        P::Binary(_) => "binary",
        P::Date(_) => "date",
        P::Time(_) => "time",
        P::Datetime(_) => "datetime",
        P::Timestamp(_) => "timestamp",
        P::Uuid(_) => "uuid",
        P::Jsonb(_) => "jsonb",
        P::Decimal(_) => "decimal",
        P::RangeInt32(_) => "range-int32",
        P::RangeInt64(_) => "range-int64",
        P::RangeDecimal(_) => "range-decimal",
        P::ArrayInt32(_) => "array-int32",
        P::ArrayInt64(_) => "array-int64",
        P::ArrayDecimal(_) => "array-decimal",
        P::ArrayStr(_) => "array-str",
        P::Interval(_) => "interval",
        P::DbNull => "db-null",
    }
}

/// The Postgres type a value binds to as-is, for the cast hint.
fn cast_hint(value: &ParameterValue) -> &'static str {
    use ParameterValue as P;
    match value {
        P::Boolean(_) => "boolean",
        P::Int8(_) => "\"char\"",
        P::Int16(_) => "smallint",
        P::Int32(_) => "integer",
        P::Int64(_) => "bigint",
        P::Floating32(_) => "real",
        P::Floating64(_) => "double precision",
        P::Str(_) => "text",
        P::Binary(_) => "bytea",
        P::Date(_) => "date",
        P::Time(_) => "time",
        P::Datetime(_) => "timestamp",
        P::Timestamp(_) => "timestamptz",
        P::Uuid(_) => "uuid",
        P::Jsonb(_) => "jsonb",
        P::Decimal(_) => "numeric",
        P::RangeInt32(_) => "int4range",
        P::RangeInt64(_) => "int8range",
        P::RangeDecimal(_) => "numrange",
        P::ArrayInt32(_) => "integer[]",
        P::ArrayInt64(_) => "bigint[]",
        P::ArrayDecimal(_) => "numeric[]",
        P::ArrayStr(_) => "text[]",
        P::Interval(_) => "interval",
        P::DbNull => "text",
    }
}

/// Converts one row. Values whose type the WIT has no variant for come back
/// as `unsupported` with their binary wire bytes.
pub fn row(row: &PgRow) -> Result<Vec<DbValue>, sqlx::Error> {
    (0..row.len()).map(|index| value(row, index)).collect()
}

/// Approximate host memory a converted row takes, for the result-size limit.
pub fn row_size(row: &[DbValue]) -> usize {
    row.iter()
        .map(|value| {
            std::mem::size_of::<DbValue>()
                + match value {
                    DbValue::Str(s) | DbValue::Uuid(s) | DbValue::Decimal(s) => s.len(),
                    DbValue::Binary(b) | DbValue::Jsonb(b) | DbValue::Unsupported(b) => b.len(),
                    DbValue::ArrayStr(v) | DbValue::ArrayDecimal(v) => v
                        .iter()
                        .map(|s| s.as_ref().map_or(0, String::len) + 24)
                        .sum(),
                    DbValue::ArrayInt32(v) => v.len() * 8,
                    DbValue::ArrayInt64(v) => v.len() * 16,
                    _ => 0,
                }
        })
        .sum()
}

fn value(row: &PgRow, index: usize) -> Result<DbValue, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(DbValue::DbNull);
    }
    let type_name = raw.type_info().name().to_string();
    Ok(match type_name.as_str() {
        "BOOL" => DbValue::Boolean(row.try_get(index)?),
        "\"CHAR\"" => DbValue::Int8(row.try_get(index)?),
        "INT2" => DbValue::Int16(row.try_get(index)?),
        "INT4" => DbValue::Int32(row.try_get(index)?),
        "INT8" => DbValue::Int64(row.try_get(index)?),
        "FLOAT4" => DbValue::Floating32(row.try_get(index)?),
        "FLOAT8" => DbValue::Floating64(row.try_get(index)?),
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" => DbValue::Str(row.try_get(index)?),
        "BYTEA" => DbValue::Binary(row.try_get(index)?),
        "DATE" => {
            let d: NaiveDate = row.try_get(index)?;
            DbValue::Date(date_tuple(d))
        }
        "TIME" => {
            let t: NaiveTime = row.try_get(index)?;
            DbValue::Time(time_tuple(t))
        }
        "TIMESTAMP" => {
            let dt: NaiveDateTime = row.try_get(index)?;
            DbValue::Datetime(datetime_tuple(dt))
        }
        "TIMESTAMPTZ" => {
            let dt: DateTime<Utc> = row.try_get(index)?;
            DbValue::Timestamp(dt.timestamp())
        }
        "UUID" => {
            let u: uuid::Uuid = row.try_get(index)?;
            DbValue::Uuid(u.hyphenated().to_string())
        }
        "JSON" | "JSONB" => {
            let Json(raw): Json<Box<RawValue>> = row.try_get(index)?;
            DbValue::Jsonb(raw.get().as_bytes().to_vec())
        }
        "NUMERIC" => DbValue::Decimal(wire(&raw, super::numeric::numeric)?),
        "INT4RANGE" => {
            let r: PgRange<i32> = row.try_get(index)?;
            DbValue::RangeInt32(range_tuple(r, |v| v))
        }
        "INT8RANGE" => {
            let r: PgRange<i64> = row.try_get(index)?;
            DbValue::RangeInt64(range_tuple(r, |v| v))
        }
        "NUMRANGE" => {
            let (lower, upper) = wire(&raw, super::numeric::numeric_range)?;
            let bound = |b: Option<(String, bool)>| {
                b.map(|(v, inclusive)| {
                    let kind = if inclusive {
                        RangeBoundKind::Inclusive
                    } else {
                        RangeBoundKind::Exclusive
                    };
                    (v, kind)
                })
            };
            DbValue::RangeDecimal((bound(lower), bound(upper)))
        }
        "INT4[]" => DbValue::ArrayInt32(row.try_get(index)?),
        "INT8[]" => DbValue::ArrayInt64(row.try_get(index)?),
        "NUMERIC[]" => DbValue::ArrayDecimal(wire(&raw, super::numeric::numeric_array)?),
        "TEXT[]" | "VARCHAR[]" | "CHAR[]" | "NAME[]" => DbValue::ArrayStr(row.try_get(index)?),
        "INTERVAL" => {
            let i: PgInterval = row.try_get(index)?;
            DbValue::Interval(Interval {
                micros: i.microseconds,
                days: i.days,
                months: i.months,
            })
        }
        _ => DbValue::Unsupported(raw.as_bytes().map(<[u8]>::to_vec).unwrap_or_default()),
    })
}

/// Decodes a value from its binary wire bytes with one of `numeric`'s readers.
fn wire<T>(
    raw: &sqlx::postgres::PgValueRef<'_>,
    read: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, sqlx::Error> {
    let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
    read(bytes).ok_or_else(|| {
        sqlx::Error::Decode(
            format!(
                "cannot decode {} from its wire format",
                raw.type_info().name()
            )
            .into(),
        )
    })
}

fn date_tuple(d: NaiveDate) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day() as u8)
}

fn time_tuple(t: NaiveTime) -> (u8, u8, u8, u32) {
    (
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    )
}

fn datetime_tuple(dt: NaiveDateTime) -> (i32, u8, u8, u8, u8, u8, u32) {
    let (y, mo, d) = date_tuple(dt.date());
    let (h, mi, s, ns) = time_tuple(dt.time());
    (y, mo, d, h, mi, s, ns)
}

type WitBound<U> = Option<(U, RangeBoundKind)>;

fn range_tuple<T, U>(range: PgRange<T>, convert: impl Fn(T) -> U) -> (WitBound<U>, WitBound<U>) {
    let bound = |b: Bound<T>| match b {
        Bound::Unbounded => None,
        Bound::Included(v) => Some((convert(v), RangeBoundKind::Inclusive)),
        Bound::Excluded(v) => Some((convert(v), RangeBoundKind::Exclusive)),
    };
    (bound(range.start), bound(range.end))
}
