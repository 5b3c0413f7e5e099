//! `transactions`: one record per transaction (MX Reporting's Transactions resource),
//! within the job's month window on `transacted_at` (the host resolves the window; the
//! kit pushes it into the source query).

use ferry_pdk::prelude::*;

/// MX's maximum precision for a transaction amount is (10,2); balances are (14,2).
const AMOUNT: Type = Type::Decimal { precision: 14, scale: 2 };
const DEGREES: Type = Type::Decimal { precision: 9, scale: 6 };

struct Transactions;

impl Resource for Transactions {
    fn describe() -> Describe {
        Describe::new("transactions", env!("CARGO_PKG_VERSION"))
            .about("account transactions; months = 1, 2, 3, 6, 12, 24 or \"all\" (MX transactions)")
            .window("transacted_at")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .reference("account_guid", "accounts", "guid")
            .reference("member_guid", "members", "guid")
            .reference("user_guid", "users", "guid")
            .field("id", Type::String.or_null())
            .field("account_guid", Type::String)
            .field("member_guid", Type::String)
            .field("user_guid", Type::String)
            .field("amount", AMOUNT)
            .field("type", Type::String)
            .field("status", Type::String)
            .field("category", Type::String.or_null())
            .field("description", Type::String.or_null())
            .field("currency_code", Type::String)
            .field("merchant_category_code", Type::Int.or_null())
            .field("is_bill_pay", Type::Boolean)
            .field("is_direct_deposit", Type::Boolean)
            .field("is_expense", Type::Boolean)
            .field("is_fee", Type::Boolean)
            .field("is_income", Type::Boolean)
            .field("is_international", Type::Boolean)
            .field("is_overdraft_fee", Type::Boolean)
            .field("is_recurring", Type::Boolean)
            .field("is_subscription", Type::Boolean)
            .field("latitude", DEGREES.or_null())
            .field("longitude", DEGREES.or_null())
            .field("transacted_at", Type::TimestampMicros)
            .field("posted_at", Type::TimestampMicros.or_null())
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(Transactions);
