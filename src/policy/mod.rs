//! Row-level security: who is asking ([`context`]), what each policy allows ([`predicate`]), and
//! how SQLite enforces it on every read path ([`views`]).
//!
//! For each table with RLS on, every connection carries a TEMP view with the table's name that
//! selects from `main.<table>` only the rows the current request may see. SQLite resolves
//! unqualified names to `temp` first, so every query that names the table (REST reads, embeds,
//! counts, policy subqueries, RPC bodies, user views) sees the filtered rows, and SQLite flattens
//! the view so indexes keep working. Requests that bypass RLS name `main.<table>` directly.
//! Writes always target `main.<table>` and check USING / WITH CHECK explicitly.

pub mod context;
pub mod predicate;
pub mod views;
