# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_bouncectl_global_optspecs
    string join \n config= db= json q/quiet v/verbose h/help V/version
end

function __fish_bouncectl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_bouncectl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_bouncectl_using_subcommand
    set -l cmd (__fish_bouncectl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c bouncectl -n "__fish_bouncectl_needs_command" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]' -r -F
complete -c bouncectl -n "__fish_bouncectl_needs_command" -l db -d 'Database file [default: the config\'s `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]' -r -F
complete -c bouncectl -n "__fish_bouncectl_needs_command" -l json -d 'Machine output: JSON Lines for check, one JSON document for stats'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -s q -l quiet -d 'No summary line; errors only'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -s v -l verbose -d 'More detail on stderr (repeatable)'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -s h -l help -d 'Print help'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -s V -l version -d 'Print version'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -f -a "check" -d 'Process bounces from every configured mailbox, or from local files'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -f -a "stats" -d 'Show counters and blocks'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -f -a "block" -d 'Block addresses by hand'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -f -a "reset" -d 'Zero counters and lift blocks'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -f -a "generate-docs" -d 'Write the man page and shell completions under DIR (for packagers)'
complete -c bouncectl -n "__fish_bouncectl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -l site -d 'Site whose counters local sources go to (default: the only site)' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -l wait -d 'Seconds to wait for another run holding the database, then exit 75' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -l db -d 'Database file [default: the config\'s `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -l dry-run -d 'Classify and report only: no database write, no deletion'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -l json -d 'Machine output: JSON Lines for check, one JSON document for stats'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -s q -l quiet -d 'No summary line; errors only'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -s v -l verbose -d 'More detail on stderr (repeatable)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -s h -l help -d 'Print help'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand check" -s V -l version -d 'Print version'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -l site -d 'Only this site (totals, addresses, --blocked)' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -l db -d 'Database file [default: the config\'s `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -l blocked -d 'Print blocked addresses only, one per line'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -l json -d 'Machine output: JSON Lines for check, one JSON document for stats'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -s q -l quiet -d 'No summary line; errors only'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -s v -l verbose -d 'More detail on stderr (repeatable)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -s h -l help -d 'Print help'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand stats" -s V -l version -d 'Print version'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l file -d 'Read addresses from a file, one per line (- = stdin)' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l site -d 'Site to block in (default: the only site)' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l reason -d 'Reason recorded with the block' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l wait -d 'Seconds to wait for another run holding the database' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l db -d 'Database file [default: the config\'s `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -l json -d 'Machine output: JSON Lines for check, one JSON document for stats'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -s q -l quiet -d 'No summary line; errors only'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -s v -l verbose -d 'More detail on stderr (repeatable)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -s h -l help -d 'Print help'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand block" -s V -l version -d 'Print version'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l site -d 'Only in this site (default: every site)' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l older-than -d 'Forget counts whose last bounce is older than DAYS' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l wait -d 'Seconds to wait for another run holding the database' -r
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l db -d 'Database file [default: the config\'s `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l all -d 'Reset every address (needs --yes)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l yes -d 'Confirm --all'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -l json -d 'Machine output: JSON Lines for check, one JSON document for stats'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -s q -l quiet -d 'No summary line; errors only'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -s v -l verbose -d 'More detail on stderr (repeatable)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -s h -l help -d 'Print help'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand reset" -s V -l version -d 'Print version'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -l db -d 'Database file [default: the config\'s `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]' -r -F
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -l json -d 'Machine output: JSON Lines for check, one JSON document for stats'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -s q -l quiet -d 'No summary line; errors only'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -s v -l verbose -d 'More detail on stderr (repeatable)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand generate-docs" -s V -l version -d 'Print version'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand help; and not __fish_seen_subcommand_from check stats block reset generate-docs help" -f -a "check" -d 'Process bounces from every configured mailbox, or from local files'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand help; and not __fish_seen_subcommand_from check stats block reset generate-docs help" -f -a "stats" -d 'Show counters and blocks'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand help; and not __fish_seen_subcommand_from check stats block reset generate-docs help" -f -a "block" -d 'Block addresses by hand'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand help; and not __fish_seen_subcommand_from check stats block reset generate-docs help" -f -a "reset" -d 'Zero counters and lift blocks'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand help; and not __fish_seen_subcommand_from check stats block reset generate-docs help" -f -a "generate-docs" -d 'Write the man page and shell completions under DIR (for packagers)'
complete -c bouncectl -n "__fish_bouncectl_using_subcommand help; and not __fish_seen_subcommand_from check stats block reset generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
