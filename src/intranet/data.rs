//! The demo's business data (customers, employees, salaries), read through one small
//! interface so handlers never know where it lives. In memory for now.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: i64,
    pub company: &'static str,
    pub contact: &'static str,
    pub region: &'static str,
    pub open_orders: i64,
    pub account_manager: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Employee {
    pub id: i64,
    pub name: &'static str,
    pub title: &'static str,
    pub department: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SalaryEntry {
    pub effective: &'static str,
    pub amount: i64,
    pub currency: &'static str,
}

const CUSTOMERS: &[(&str, &str, &str, i64, &str)] = &[
    ("Northwind Traders", "Maria Anders", "EMEA", 4, "Bob"),
    ("Contoso Pharmaceuticals", "Ana Trujillo", "Americas", 2, "Bob"),
    ("Tailspin Toys", "Antonio Moreno", "Americas", 7, "Dana"),
    ("Wide World Importers", "Thomas Hardy", "EMEA", 1, "Bob"),
    ("Adventure Works Cycles", "Christina Berglund", "EMEA", 3, "Dana"),
    ("Litware Inc.", "Hanna Moos", "APAC", 0, "Dana"),
    ("Proseware, Inc.", "Frédérique Citeaux", "EMEA", 5, "Bob"),
    ("Woodgrove Bank", "Martín Sommer", "Americas", 2, "Dana"),
];

/// name, title, department, salary history (effective date, annual EUR)
type EmployeeRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, i64)],
);

const EMPLOYEES: &[EmployeeRow] = &[
    (
        "Alice Ashford",
        "Head of People",
        "HR",
        &[("2024-01-01", 98_000), ("2025-04-01", 104_000)],
    ),
    (
        "Bob Brennan",
        "Account Executive",
        "Sales",
        &[("2023-06-01", 72_000), ("2025-04-01", 76_500)],
    ),
    (
        "Carol Castillo",
        "HR Business Partner",
        "HR",
        &[("2025-09-01", 81_000)],
    ),
    (
        "Dana Dimitrova",
        "Sales Manager",
        "Sales",
        &[("2022-03-01", 88_000), ("2024-04-01", 93_000)],
    ),
    (
        "Erik Eriksen",
        "Staff Engineer",
        "Engineering",
        &[("2021-01-01", 120_000), ("2025-01-01", 131_000)],
    ),
    (
        "Fatima Farouk",
        "Controller",
        "Finance",
        &[("2023-02-01", 99_000)],
    ),
];

/// Read access to the demo data.
#[derive(Debug, Default, Clone)]
pub struct Directory;

impl Directory {
    pub fn customers(&self) -> Vec<Customer> {
        CUSTOMERS
            .iter()
            .enumerate()
            .map(
                |(i, &(company, contact, region, open_orders, account_manager))| Customer {
                    id: i as i64 + 1,
                    company,
                    contact,
                    region,
                    open_orders,
                    account_manager,
                },
            )
            .collect()
    }

    pub fn customer(&self, id: i64) -> Option<Customer> {
        self.customers().into_iter().find(|c| c.id == id)
    }

    pub fn employees(&self) -> Vec<Employee> {
        EMPLOYEES
            .iter()
            .enumerate()
            .map(|(i, &(name, title, department, _))| Employee {
                id: i as i64 + 1,
                name,
                title,
                department,
            })
            .collect()
    }

    pub fn employee(&self, id: i64) -> Option<Employee> {
        self.employees().into_iter().find(|e| e.id == id)
    }

    /// Salary history, oldest first.
    pub fn salary_history(&self, id: i64) -> Option<Vec<SalaryEntry>> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        let (_, _, _, history) = EMPLOYEES.get(index)?;
        Some(
            history
                .iter()
                .map(|&(effective, amount)| SalaryEntry {
                    effective,
                    amount,
                    currency: "EUR",
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_unknown_ids_are_none() {
        let d = Directory;
        assert_eq!(d.customer(1).unwrap().company, "Northwind Traders");
        assert!(d.customer(0).is_none());
        assert!(d.customer(i64::MAX).is_none());
        assert_eq!(d.employee(1).unwrap().name, "Alice Ashford");
        assert!(d.salary_history(-1).is_none());
        assert_eq!(d.salary_history(2).unwrap().last().unwrap().amount, 76_500);
    }
}
