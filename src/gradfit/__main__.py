from gradfit.cli.entry import leave, main

leave(main())
