from gradfit.cli.parser import main

raise SystemExit(main())
