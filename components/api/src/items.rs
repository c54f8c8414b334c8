//! Items: what an item is, a new item, and the item's JSON. Their SQL is in
//! [`crate::repository::items`].

use serde::Serialize;
use serde_json::value::RawValue;

use crate::price::Price;

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub price: Price,
    pub is_available: bool,
    pub owner_id: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Item {
    /// `{"id", "name", "description", "price", "is_available", "owner_id",
    /// "created_at", "updated_at"}` with the price a JSON number with exactly
    /// two decimals. Serialized straight to text: a `serde_json::Value` would
    /// turn `12.50` back into `12.5`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            id: i64,
            name: &'a str,
            description: Option<&'a str>,
            price: Box<RawValue>,
            is_available: bool,
            owner_id: i64,
            created_at: &'a str,
            updated_at: &'a str,
        }
        let wire = Wire {
            id: self.id,
            name: &self.name,
            description: self.description.as_deref(),
            price: RawValue::from_string(self.price.to_string())
                .expect("a price renders as a JSON number"),
            is_available: self.is_available,
            owner_id: self.owner_id,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
        };
        serde_json::to_string(&wire).expect("an item serializes")
    }

    /// A JSON array of items.
    pub fn list_json(items: &[Item]) -> String {
        let parts: Vec<String> = items.iter().map(Item::to_json).collect();
        format!("[{}]", parts.join(","))
    }
}

/// A new item, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub name: String,
    pub description: Option<String>,
    pub price: Price,
    pub is_available: bool,
    pub owner_id: i64,
}
