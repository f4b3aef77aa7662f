//! A row of the users table, as the policy sees it (contract §5).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    NetworkAdmin,
    User,
    Auditor,
    BillingAdmin,
    /// Anything else: it grants nothing.
    Unknown,
}

impl Role {
    pub fn parse(role: &str) -> Self {
        match role {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "network_admin" => Role::NetworkAdmin,
            "user" => Role::User,
            "auditor" => Role::Auditor,
            "billing_admin" => Role::BillingAdmin,
            _ => Role::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub role: Role,
    pub is_service_user: bool,
    pub service_user_name: Option<String>,
    pub blocked: bool,
    pub pending_approval: bool,
}
