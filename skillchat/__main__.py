from skillchat.cli import main

raise SystemExit(main())
