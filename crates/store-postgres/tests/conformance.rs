//! The backend-independent conformance suite (`lastmile_store::conformance`) against
//! PostgreSQL: a fresh database of the throwaway test cluster per case. Skipped when
//! PostgreSQL is not installed (see `lastmile_testing::pg`).

lastmile_store::conformance_suite!(lastmile_testing::pg_store());
