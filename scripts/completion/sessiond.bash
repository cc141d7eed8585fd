# bash completion for sessiond (installed as
# share/bash-completion/completions/sessiond by `make install`).
#
#   sessiond <TAB>            options and the gen-secret command
#   sessiond -c <TAB>         YAML files (also after --config and -t -c)
#   sessiond --check-config=<TAB>
#   sessiond gen-secret <TAB> --help
_sessiond() {
  local cur prev
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  # With '=' in COMP_WORDBREAKS (the default), "--config=x" arrives as
  # "--config" "=" "x": treat it like "--config x".
  if [ "$prev" = "=" ] && [ "$COMP_CWORD" -ge 2 ]; then
    case "${COMP_WORDS[COMP_CWORD-2]}" in
      --config|--check-config) prev=-c ;;
    esac
  elif [ "$cur" = "=" ]; then
    case "$prev" in
      --config|--check-config) cur=""; prev=-c ;;
    esac
  fi

  if [ "${COMP_WORDS[1]:-}" = gen-secret ] && [ "$COMP_CWORD" -ge 2 ]; then
    [ "$COMP_CWORD" -eq 2 ] && mapfile -t COMPREPLY < <(compgen -W "--help" -- "$cur")
    return 0
  fi
  case "$prev" in
    -c|--config)
      mapfile -t COMPREPLY < <(compgen -f -X '!*.@(yaml|yml|example)' -- "$cur"; compgen -d -- "$cur")
      compopt -o filenames 2>/dev/null
      return 0 ;;
  esac
  case "$cur" in
    --check-config=*|--config=*)
      local opt=${cur%%=*} file=${cur#*=}
      mapfile -t COMPREPLY < <({ compgen -f -X '!*.@(yaml|yml|example)' -- "$file"; compgen -d -- "$file"; } \
                                 | sed "s#^#$opt=#")
      compopt -o filenames 2>/dev/null
      return 0 ;;
  esac
  local words="-c --config -t --check-config --version --help"
  [ "$COMP_CWORD" -eq 1 ] && words="$words gen-secret"
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  return 0
}
complete -F _sessiond sessiond
