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

#[cfg(test)]
mod tests {
    use ferry_pdk::mock::{Datum, MockHost, Value, row};

    use super::Accounts;

    const COLUMNS: &[&str] = &[
        "guid",
        "id",
        "user_guid",
        "member_guid",
        "account_number",
        "type",
        "subtype",
        "name",
        "nickname",
        "balance",
        "available_balance",
        "credit_limit",
        "apr",
        "apy",
        "currency_code",
        "institution_code",
        "is_closed",
        "is_hidden",
        "is_manual",
        "created_at",
        "updated_at",
    ];

    fn account(guid: &str, balance: &str, created_at: i64) -> Vec<Datum> {
        let none = None::<&str>;
        row![
            guid, none, "USR-1", "MBR-1", none, "CHECKING", none, "Checking", none, balance, none, none, "0.0125", none, "USD", none, 0, 1,
            0, created_at, created_at
        ]
    }

    #[test]
    fn copies_each_column_into_its_field_and_leaves_out_rows_created_after_as_of() {
        let out = MockHost::new()
            .table("accounts", COLUMNS, [account("ACT-1", "10.5", 1), account("ACT-2", "-3", 5)])
            .as_of(5)
            .export::<Accounts>()
            .unwrap();
        assert_eq!(out.records.len(), 1);
        let r = &out.records[0];
        assert_eq!(
            (r["guid"].to_string(), r["balance"].to_string(), r["apr"].to_string()),
            ("ACT-1".into(), "10.50".into(), "0.012500".into())
        );
        assert_eq!((&r["is_hidden"], &r["nickname"]), (&Value::Boolean(true), &Value::Null));
    }

    #[test]
    fn a_balance_beyond_the_money_precision_names_the_row_column_and_field() {
        let err = MockHost::new()
            .table("accounts", COLUMNS, [account("ACT-1", "1234567890123.00", 1)])
            .export::<Accounts>()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "bad data: table `accounts`, row guid \"ACT-1\", column `balance`: text \"1234567890123.00\" does not fit field `balance` \
             (decimal(14, 2))"
        );
    }
}
