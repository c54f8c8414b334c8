//! The items table: every statement for it, in both dialects.

use crate::items::{Item, NewItem};
use crate::price::Price;
use crate::storage::{Database, DbError, Dialect, Value};
use crate::validation::{ItemFields, Order, Page};

const PG_COLUMNS: &str = "id, name, description, price::text, is_available, owner_id, \
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
const SQLITE_COLUMNS: &str =
    "id, name, description, price_cents, is_available, owner_id, created_at, updated_at";

fn columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => PG_COLUMNS,
        Dialect::Sqlite => SQLITE_COLUMNS,
    }
}

/// Postgres takes the price as exact text (cast to numeric in SQL, so the
/// parameter's type is text for every driver); SQLite as integer cents.
fn price_param(dialect: Dialect, price: Price) -> Value {
    match dialect {
        Dialect::Postgres => Value::Text(price.to_string()),
        Dialect::Sqlite => Value::Int(price.cents()),
    }
}

fn item(dialect: Dialect, row: Vec<Value>) -> Result<Item, DbError> {
    let bad = || DbError::Other(format!("unexpected item row: {row:?}"));
    let mut values = row.clone().into_iter();
    let mut next = || values.next().ok_or_else(bad);
    let id = next()?.as_i64().ok_or_else(bad)?;
    let name = next()?.into_text().ok_or_else(bad)?;
    let description = next()?.into_text();
    let price = match (dialect, next()?) {
        (Dialect::Postgres, Value::Text(text)) => Price::parse(&text).ok(),
        (Dialect::Sqlite, value) => value.as_i64().and_then(Price::from_cents),
        _ => None,
    }
    .ok_or_else(bad)?;
    let is_available = next()?.as_bool().ok_or_else(bad)?;
    let owner_id = next()?.as_i64().ok_or_else(bad)?;
    let created_at = next()?.into_text().ok_or_else(bad)?;
    let updated_at = next()?.into_text().ok_or_else(bad)?;
    Ok(Item {
        id,
        name,
        description,
        price,
        is_available,
        owner_id,
        created_at,
        updated_at,
    })
}

fn items(dialect: Dialect, rows: Vec<Vec<Value>>) -> Result<Vec<Item>, DbError> {
    rows.into_iter().map(|row| item(dialect, row)).collect()
}

/// A page of items ordered by id, optionally of one owner.
pub async fn list<D: Database>(db: &D, page: &Page) -> Result<Vec<Item>, DbError> {
    let d = db.dialect();
    let direction = match page.order {
        Order::Ascending => "ASC",
        Order::Descending => "DESC",
    };
    let (sql, params) = match page.owner_id {
        Some(owner) => (
            format!(
                "SELECT {} FROM items WHERE owner_id = {} ORDER BY id {direction} LIMIT {} OFFSET {}",
                columns(d),
                d.param(1),
                d.param(2),
                d.param(3)
            ),
            vec![
                Value::Int(owner),
                Value::Int(page.limit),
                Value::Int(page.skip),
            ],
        ),
        None => (
            format!(
                "SELECT {} FROM items ORDER BY id {direction} LIMIT {} OFFSET {}",
                columns(d),
                d.param(1),
                d.param(2)
            ),
            vec![Value::Int(page.limit), Value::Int(page.skip)],
        ),
    };
    items(d, db.query(&sql, &params).await?)
}

pub async fn get<D: Database>(db: &D, id: i64) -> Result<Option<Item>, DbError> {
    let d = db.dialect();
    let sql = format!("SELECT {} FROM items WHERE id = {}", columns(d), d.param(1));
    Ok(items(d, db.query(&sql, &[Value::Int(id)]).await?)?
        .into_iter()
        .next())
}

pub async fn create<D: Database>(db: &D, new: NewItem) -> Result<Item, DbError> {
    let d = db.dialect();
    let (price_column, price_value) = match d {
        Dialect::Postgres => ("price", format!("{}::text::numeric", d.param(3))),
        Dialect::Sqlite => ("price_cents", d.param(3)),
    };
    let sql = format!(
        "INSERT INTO items (name, description, {price_column}, is_available, owner_id) \
         VALUES ({}, {}, {price_value}, {}, {}) RETURNING {}",
        d.param(1),
        d.param(2),
        d.param(4),
        d.param(5),
        columns(d)
    );
    let params = [
        Value::Text(new.name),
        Value::from(new.description),
        price_param(d, new.price),
        Value::Bool(new.is_available),
        Value::Int(new.owner_id),
    ];
    items(d, db.query(&sql, &params).await?)?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::Other("insert returned no row".into()))
}

/// Applies the given fields (absent ones are kept) in one statement.
pub async fn update<D: Database>(
    db: &D,
    id: i64,
    changes: &ItemFields,
) -> Result<Option<Item>, DbError> {
    let d = db.dialect();
    let mut sets = Vec::new();
    let mut params = vec![Value::Int(id)];
    let mut set = |column: &str, value: Value, cast: &str| {
        params.push(value);
        sets.push(format!("{column} = {}{cast}", d.param(params.len())));
    };
    if let Some(name) = &changes.name {
        set("name", Value::Text(name.clone()), "");
    }
    if let Some(description) = &changes.description {
        set("description", Value::from(description.clone()), "");
    }
    if let Some(price) = changes.price {
        match d {
            Dialect::Postgres => set("price", price_param(d, price), "::text::numeric"),
            Dialect::Sqlite => set("price_cents", price_param(d, price), ""),
        }
    }
    if let Some(available) = changes.is_available {
        set("is_available", Value::Bool(available), "");
    }
    if let Some(owner) = changes.owner_id {
        set("owner_id", Value::Int(owner), "");
    }
    sets.push(format!("updated_at = {}", d.now()));
    let sql = format!(
        "UPDATE items SET {} WHERE id = {} RETURNING {}",
        sets.join(", "),
        d.param(1),
        columns(d)
    );
    Ok(items(d, db.query(&sql, &params).await?)?.into_iter().next())
}

/// Whether an item was deleted.
pub async fn delete<D: Database>(db: &D, id: i64) -> Result<bool, DbError> {
    let d = db.dialect();
    let sql = format!("DELETE FROM items WHERE id = {}", d.param(1));
    Ok(db.execute(&sql, &[Value::Int(id)]).await? > 0)
}
