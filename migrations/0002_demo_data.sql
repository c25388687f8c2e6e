-- Demo data, seeded once by this migration.

INSERT INTO customers (id, company, contact, region, open_orders, account_manager) VALUES
    (1, 'Northwind Traders', 'Maria Anders', 'EMEA', 4, 'Bob Brennan'),
    (2, 'Contoso Pharmaceuticals', 'Ana Trujillo', 'Americas', 2, 'Bob Brennan'),
    (3, 'Tailspin Toys', 'Antonio Moreno', 'Americas', 7, 'Dana Dimitrova'),
    (4, 'Wide World Importers', 'Thomas Hardy', 'EMEA', 1, 'Bob Brennan'),
    (5, 'Adventure Works Cycles', 'Christina Berglund', 'EMEA', 3, 'Dana Dimitrova'),
    (6, 'Litware Inc.', 'Hanna Moos', 'APAC', 0, 'Dana Dimitrova'),
    (7, 'Proseware, Inc.', 'Frédérique Citeaux', 'EMEA', 5, 'Bob Brennan'),
    (8, 'Woodgrove Bank', 'Martín Sommer', 'Americas', 2, 'Dana Dimitrova'),
    (9, 'Fourth Coffee', 'Laurence Lebihan', 'EMEA', 6, 'Bob Brennan'),
    (10, 'Lamna Healthcare', 'Elizabeth Lincoln', 'Americas', 1, 'Dana Dimitrova'),
    (11, 'Margie''s Travel', 'Victoria Ashworth', 'EMEA', 0, 'Bob Brennan'),
    (12, 'Alpine Ski House', 'Patricio Simpson', 'EMEA', 3, 'Dana Dimitrova'),
    (13, 'Coho Winery', 'Francisco Chang', 'Americas', 2, 'Bob Brennan'),
    (14, 'Trey Research', 'Yang Wang', 'APAC', 4, 'Dana Dimitrova'),
    (15, 'Blue Yonder Airlines', 'Pedro Afonso', 'Americas', 8, 'Bob Brennan'),
    (16, 'Graphic Design Institute', 'Elizabeth Brown', 'EMEA', 1, 'Dana Dimitrova'),
    (17, 'Humongous Insurance', 'Sven Ottlieb', 'EMEA', 2, 'Bob Brennan'),
    (18, 'Lucerne Publishing', 'Janine Labrune', 'EMEA', 0, 'Dana Dimitrova'),
    (19, 'Relecloud', 'Ann Devon', 'Americas', 5, 'Bob Brennan'),
    (20, 'School of Fine Art', 'Roland Mendel', 'EMEA', 1, 'Dana Dimitrova'),
    (21, 'Southridge Video', 'Aria Cruz', 'Americas', 3, 'Bob Brennan'),
    (22, 'VanArsdel, Ltd.', 'Diego Roel', 'Americas', 6, 'Dana Dimitrova'),
    (23, 'Wingtip Toys', 'Martine Rancé', 'EMEA', 2, 'Bob Brennan'),
    (24, 'Best For You Organics', 'Maria Larsson', 'EMEA', 4, 'Dana Dimitrova'),
    (25, 'Nod Publishers', 'Peter Franken', 'APAC', 1, 'Bob Brennan');

INSERT INTO employees (id, name, title, department, manager_id) VALUES
    (1, 'Alice Ashford', 'Head of People', 'HR', NULL),
    (2, 'Bob Brennan', 'Account Executive', 'Sales', NULL),
    (3, 'Carol Castillo', 'HR Business Partner', 'HR', NULL),
    (4, 'Dana Dimitrova', 'Sales Manager', 'Sales', NULL),
    (5, 'Erik Eriksen', 'Staff Engineer', 'Engineering', NULL),
    (6, 'Fatima Farouk', 'Financial Controller', 'Finance', NULL),
    (7, 'Gustavo Gomes', 'Software Engineer', 'Engineering', NULL),
    (8, 'Hana Hashimoto', 'VP Engineering', 'Engineering', NULL),
    (9, 'Ivan Ivanov', 'Support Engineer', 'Customer Success', NULL),
    (10, 'Jade Johnson', 'Sales Development Rep', 'Sales', NULL),
    (11, 'Kofi Kwarteng', 'Payroll Specialist', 'Finance', NULL),
    (12, 'Lena Larsen', 'Customer Success Lead', 'Customer Success', NULL),
    (13, 'Mateo Martínez', 'Designer', 'Engineering', NULL),
    (14, 'Nadia Novak', 'Recruiter', 'HR', NULL),
    (15, 'Olivia Okafor', 'Chief Executive Officer', 'Leadership', NULL);
UPDATE employees SET manager_id = 4 WHERE id = 2;
UPDATE employees SET manager_id = 1 WHERE id = 3;
UPDATE employees SET manager_id = 15 WHERE id = 4;
UPDATE employees SET manager_id = 8 WHERE id = 5;
UPDATE employees SET manager_id = 15 WHERE id = 6;
UPDATE employees SET manager_id = 5 WHERE id = 7;
UPDATE employees SET manager_id = 15 WHERE id = 8;
UPDATE employees SET manager_id = 12 WHERE id = 9;
UPDATE employees SET manager_id = 4 WHERE id = 10;
UPDATE employees SET manager_id = 6 WHERE id = 11;
UPDATE employees SET manager_id = 15 WHERE id = 12;
UPDATE employees SET manager_id = 8 WHERE id = 13;
UPDATE employees SET manager_id = 1 WHERE id = 14;

INSERT INTO salaries (employee_id, effective_date, amount, currency) VALUES
    (1, '2023-01-01', 96000, 'EUR'),
    (1, '2024-04-01', 101000, 'EUR'),
    (1, '2025-04-01', 104000, 'EUR'),
    (2, '2023-06-01', 72000, 'EUR'),
    (2, '2025-04-01', 76500, 'EUR'),
    (3, '2025-09-01', 81000, 'EUR'),
    (4, '2022-03-01', 88000, 'EUR'),
    (4, '2024-04-01', 93000, 'EUR'),
    (5, '2021-01-01', 120000, 'EUR'),
    (5, '2025-01-01', 131000, 'EUR'),
    (6, '2023-02-01', 99000, 'EUR'),
    (7, '2024-02-01', 78000, 'EUR'),
    (7, '2025-02-01', 83000, 'EUR'),
    (8, '2022-07-01', 142000, 'EUR'),
    (8, '2024-07-01', 150000, 'EUR'),
    (9, '2024-09-01', 54000, 'EUR'),
    (10, '2025-01-15', 48000, 'GBP'),
    (11, '2023-11-01', 61000, 'EUR'),
    (11, '2025-04-01', 64000, 'EUR'),
    (12, '2022-05-01', 86000, 'EUR'),
    (12, '2024-05-01', 90500, 'EUR'),
    (13, '2024-03-01', 70000, 'EUR'),
    (14, '2024-10-01', 58000, 'EUR'),
    (15, '2021-01-01', 190000, 'USD'),
    (15, '2024-01-01', 210000, 'USD');
