//! The `products` table: the price list.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::postgres::PgRow;
use wechat_pay::Fen;

use super::{Store, StoreError};
use crate::domain::Product;

fn product_from_row(row: &PgRow) -> Result<Product, StoreError> {
    let price: i64 = row.try_get("price_fen")?;
    Ok(Product {
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        price_fen: Fen::from_i64(price).map_err(|e| StoreError::corrupt("price_fen", e))?,
    })
}

impl Store {
    /// The active price list, by sku.
    pub async fn products(&self) -> Result<Vec<Product>, StoreError> {
        let rows =
            sqlx::query("SELECT sku, name, price_fen FROM products WHERE active ORDER BY sku")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(product_from_row).collect()
    }

    /// The active products among `skus`.
    pub async fn products_by_sku(
        &self,
        skus: &[&str],
    ) -> Result<HashMap<String, Product>, StoreError> {
        let rows =
            sqlx::query("SELECT sku, name, price_fen FROM products WHERE active AND sku = ANY($1)")
                .bind(skus)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| product_from_row(row).map(|p| (p.sku.clone(), p)))
            .collect()
    }
}
