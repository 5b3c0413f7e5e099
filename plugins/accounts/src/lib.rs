//! `accounts`: one record per financial account (MX Reporting's Accounts resource).

use ferry_pdk::prelude::*;

/// MX's maximum precision for balances (14,2) and rates (10,6).
const MONEY: Type = Type::Decimal { precision: 14, scale: 2 };
const RATE: Type = Type::Decimal { precision: 10, scale: 6 };

struct Accounts;

impl Resource for Accounts {
    fn describe() -> Describe {
        Describe::new("accounts", env!("CARGO_PKG_VERSION"))
            .about("financial accounts held by members (MX accounts)")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .reference("user_guid", "users", "guid")
            .reference("member_guid", "members", "guid")
            .field("id", Type::String.or_null())
            .field("user_guid", Type::String)
            .field("member_guid", Type::String)
            .field("account_number", Type::String.or_null())
            .field("type", Type::String)
            .field("subtype", Type::String.or_null())
            .field("name", Type::String)
            .field("nickname", Type::String.or_null())
            .field("balance", MONEY)
            .field("available_balance", MONEY.or_null())
            .field("credit_limit", MONEY.or_null())
            .field("apr", RATE.or_null())
            .field("apy", RATE.or_null())
            .field("currency_code", Type::String)
            .field("institution_code", Type::String.or_null())
            .field("is_closed", Type::Boolean)
            .field("is_hidden", Type::Boolean)
            .field("is_manual", Type::Boolean)
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(Accounts);
