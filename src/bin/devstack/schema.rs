//! The tables' definitions, read from `template.yaml`: the local stack and
//! the tests create exactly what SAM deploys.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use serde_norway::Value;

pub struct TableSchema {
    attributes: Vec<AttributeDefinition>,
    keys: Vec<KeySchemaElement>,
    indexes: Vec<GlobalSecondaryIndex>,
}

type Result<T> = std::result::Result<T, String>;

/// The `Properties` of the resource `logical_id` in the template.
pub fn table_schema(template: &str, logical_id: &str) -> Result<TableSchema> {
    let doc: Value = serde_norway::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let props = &doc["Resources"][logical_id]["Properties"];
    if props.is_null() {
        return Err(format!("template.yaml has no {logical_id}"));
    }
    let attributes = list(&props["AttributeDefinitions"])?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"])?)
                .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"])?))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_>>()?;
    let keys = key_schema(&props["KeySchema"])?;
    let indexes = match &props["GlobalSecondaryIndexes"] {
        Value::Null => Vec::new(),
        gsis => list(gsis)?
            .iter()
            .map(|g| {
                GlobalSecondaryIndex::builder()
                    .index_name(text(&g["IndexName"])?)
                    .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(text(&g["Projection"]["ProjectionType"])?))
                            .build(),
                    )
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_>>()?,
    };
    Ok(TableSchema { attributes, keys, indexes })
}

/// Creates `name` with `schema`; an existing table is left as it is.
pub async fn create_table(client: &Client, name: &str, schema: &TableSchema) -> Result<()> {
    let result = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(schema.attributes.clone()))
        .set_key_schema(Some(schema.keys.clone()))
        .set_global_secondary_indexes((!schema.indexes.is_empty()).then(|| schema.indexes.clone()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
        Err(e) => Err(format!("{name}: {}", crate::sdk("CreateTable")(e))),
    }
}

fn key_schema(value: &Value) -> Result<Vec<KeySchemaElement>> {
    list(value)?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"])?)
                .key_type(KeyType::from(text(&k["KeyType"])?))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn list(value: &Value) -> Result<&Vec<Value>> {
    value.as_sequence().ok_or_else(|| "template.yaml: expected a list".to_owned())
}

fn text(value: &Value) -> Result<&str> {
    value.as_str().ok_or_else(|| "template.yaml: expected a string".to_owned())
}
