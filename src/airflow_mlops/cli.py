"""``airflow-mlops``: command-line entry point of the provider."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``demo`` and ``seed-postgres``."""
    parser = argparse.ArgumentParser(prog="airflow-mlops", description="airflow-provider-mlops tools")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the Level 2 pipeline on the embedded default")
    demo.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the demo (see demo --help)")
    seed = commands.add_parser("seed-postgres", help="load the synthetic customers table into Postgres")
    seed.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=mlops", help="libpq connection string")
    seed.add_argument("--table", default="public.customers")
    seed.add_argument("--rows", type=int, default=3000)
    seed.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    if args.command == "demo":
        from airflow_mlops.demo.run import main as run_demo

        return run_demo(args.args)
    import psycopg2

    from airflow_mlops.demo.seed import seed_customers

    with psycopg2.connect(args.dsn) as conn:
        added = seed_customers(conn, table=args.table, rows=args.rows, seed=args.seed)
    print(f"seed-postgres: added {added} rows to {args.table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
