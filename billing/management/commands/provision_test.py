from billing.management.commands.pterodactyl_check import Command as PterodactylCheck


class Command(PterodactylCheck):
    help = "Alias of pterodactyl_check (the guides' provision-test)."
