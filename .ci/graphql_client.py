"""Loads the GraphQL schema the way GraphiQL, Apollo and gql do (the
standard introspection query), then runs typed queries that gql validates
against it before sending. Usage: graphql_client.py <endpoint> [token]"""
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport
from graphql import get_introspection_query, build_client_schema, print_schema

endpoint = sys.argv[1]
headers = {"authorization": f"Bearer {sys.argv[2]}"} if len(sys.argv) > 2 else {}
transport = RequestsHTTPTransport(url=endpoint, headers=headers, timeout=10)
client = Client(transport=transport, fetch_schema_from_transport=True)

with client as session:
    schema = client.schema
    assert schema is not None, "no schema loaded"
    # Every type of every field resolves: build_client_schema would have
    # failed otherwise; print the SDL as a further check.
    sdl = print_schema(schema)
    for name in ["Query", "Mutation", "Task", "Step"]:
        assert f"type {name}" in sdl, f"{name} missing from the schema:\n{sdl}"

    tasks = session.execute(gql("""
        query Recent($limit: Int!) {
          tasks(limit: $limit) { taskId namespace name version state steps { name state attempts } }
        }
    """), variable_values={"limit": 5})
    assert tasks["tasks"], f"no tasks returned: {tasks}"
    first = tasks["tasks"][0]
    one = session.execute(gql("""
        query One($id: Int!) { task(id: $id) { taskId state } }
    """), variable_values={"id": first["taskId"]})
    assert one["task"]["taskId"] == first["taskId"], one
    handlers = session.execute(gql("{ handlers { namespace name version } }"))
    assert any(h["name"] == "process_order" for h in handlers["handlers"]), handlers

    # A query the schema does not allow is refused by the client itself.
    try:
        session.execute(gql("{ tasks { noSuchField } }"))
    except Exception as e:  # graphql.error.GraphQLError from validation
        assert "noSuchField" in str(e), e
    else:
        raise AssertionError("an invalid query was not refused")

print(f"schema loaded ({len(schema.type_map)} types), typed queries ran")
