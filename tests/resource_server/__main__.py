from tests.resource_server.server import main

main()
