from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ServiceError
from apps.gallery import search


class Command(BaseCommand):
    help = (
        "Show the 1:K search indexes (IVFFlat, one per embedding width, for galleries larger than "
        "RECOGNITION_EXACT_SEARCH_MAX_ROWS); --build (re)builds them now, --if-needed only those missing or "
        "trained on too few faces."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--build", action="store_true", help="Build or rebuild now (every width with faces).")
        group.add_argument("--if-needed", action="store_true", help="Build only where the status says it is needed.")
        parser.add_argument(
            "--dimensions",
            type=int,
            action="append",
            choices=search.SEARCH_INDEX_WIDTHS,
            help="Only this embedding width (repeatable); default: every width a model has.",
        )

    def handle(self, *args, build, if_needed, dimensions=None, **options):
        for width in dimensions or search.SEARCH_INDEX_WIDTHS:
            status = search.search_index_status(width)
            self.report(status)
            if (build and status.faces) or (if_needed and status.needs_build):
                self.stdout.write(
                    f"building with {status.wanted_lists} lists (both cores, minutes at a million faces) ..."
                )
                try:
                    status = search.search_index_build(width)
                except ServiceError as error:
                    raise CommandError(error.message) from None
                self.report(status)

    def report(self, status: search.SearchIndexStatus) -> None:
        index = f"{status.lists} lists" if status.lists else "none"
        verdict = "needs a build" if status.needs_build else "up to date"
        self.stdout.write(f"faces ({status.dimensions}-d): {status.faces}; index: {index}; {verdict}")
