"""The private PostgreSQL fixture: start, connect, databases from a template, stop."""

import psycopg
import pytest

from espomail.testing.postgres import Postgres


def test_connects_on_loopback_with_the_password_and_durability_off(postgres):
    assert postgres.url("postgres").startswith(f"postgresql://espomail:{postgres.password}@127.0.0.1:{postgres.port}/")
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("espomail",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(postgres.socket_dir),)


def test_a_wrong_password_is_refused(postgres):
    wrong = postgres.url().replace(postgres.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10)


def test_database_from_a_template_is_a_copy_and_independent(postgres):
    postgres.drop_database("fixture_template")
    postgres.create_database("fixture_template")
    with psycopg.connect(postgres.url("fixture_template")) as conn:
        conn.execute("CREATE TABLE things (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO things (name) VALUES ('from the template')")
    url = postgres.create_database("fixture_copy", template="fixture_template")
    assert url == postgres.url("fixture_copy")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT name FROM things").fetchall() == [("from the template",)]
        conn.execute("INSERT INTO things (name) VALUES ('only in the copy')")
    with psycopg.connect(postgres.url("fixture_template")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM things").fetchone() == (1,)
    open_connection = psycopg.connect(url)  # drop_database closes what is still connected
    postgres.drop_database("fixture_copy")
    postgres.drop_database("fixture_copy")  # dropping again is no error
    open_connection.close()
    postgres.drop_database("fixture_template")
    with psycopg.connect(postgres.url()) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert not names & {"fixture_template", "fixture_copy"}


def test_names_are_quoted_not_pasted(postgres):
    name = 'odd "name"; DROP DATABASE postgres'
    postgres.create_database(name)
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() == (1,)
    postgres.drop_database(name)


def test_stop_ends_the_server_and_removes_its_directory():
    server = Postgres()
    server.start()
    url, base = server.url(), server.base
    with psycopg.connect(url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    assert not base.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
