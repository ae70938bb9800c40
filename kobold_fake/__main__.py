from kobold_fake.server import main

main()
