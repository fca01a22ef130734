from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ServiceError
from apps.gallery import search


class Command(BaseCommand):
    help = (
        "Show the 1:K search index (IVFFlat, for galleries larger than RECOGNITION_EXACT_SEARCH_MAX_ROWS); "
        "--build (re)builds it now, --if-needed only when it is missing or trained on too few faces."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--build", action="store_true", help="Build or rebuild the index now.")
        group.add_argument("--if-needed", action="store_true", help="Build only if the status says it is needed.")

    def handle(self, *args, build, if_needed, **options):
        status = search.search_index_status()
        self.report(status)
        if build or (if_needed and status.needs_build):
            self.stdout.write(f"building with {status.wanted_lists} lists (both cores, minutes at a million faces) ...")
            try:
                status = search.search_index_build()
            except ServiceError as error:
                raise CommandError(error.message) from None
            self.report(status)

    def report(self, status: search.SearchIndexStatus) -> None:
        index = f"{status.lists} lists" if status.lists else "none"
        verdict = "needs a build" if status.needs_build else "up to date"
        self.stdout.write(f"faces (128-d): {status.faces}; index: {index}; {verdict}")
